from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from rallypoint.audit.chain import ChainReport, verify_all
from rallypoint.tenants.models import Organization, Site


def describe(report: ChainReport, names: dict) -> str:
    """One line per chain: what it is, whether it is whole, where it breaks, and its head hash."""
    where = (f"site {report.site_id} “{names['site'].get(report.site_id, '?')}”" if report.site_id is not None
             else f"organisation {report.organization_id} “{names['org'].get(report.organization_id, '?')}”")
    purged = (f"; purged up to no. {report.anchor_seq} ({report.anchor_at:%Y-%m-%d %H:%M} UTC)"
              if report.anchor_seq else "")
    if report.ok:
        return (f"{where}: ok, {report.entries} entries{purged}; head no. {report.last_seq} "
                f"{report.head_hash or '-'}")
    entry = f" (id {report.broken_id})" if report.broken_id is not None else ""
    return (f"{where}: BROKEN at entry no. {report.broken_seq}{entry}: {report.reason}; "
            f"{report.entries} entries{purged}")


class Command(BaseCommand):
    help = ("Verify the hash chains of the audit trail: every site's, and every organisation's own entries. "
            "Prints each chain's result and head hash (note the head hashes outside the database: with them, "
            "even a rewrite of a whole chain shows); exits 1 when a chain is broken.")

    def add_arguments(self, parser):
        parser.add_argument("--site", type=int, help="verify this site's chain only (its id)")

    def handle(self, *args, site=None, **options):
        if site is not None and not Site.objects.filter(pk=site).exists():
            raise CommandError(f"There is no site {site}.", returncode=2)
        reports = verify_all(site_id=site)
        if site is not None and not reports:
            reports = [ChainReport(Site.objects.get(pk=site).organization_id, site)]  # nothing recorded yet
        names = {"site": dict(Site.objects.values_list("pk", "name")),
                 "org": dict(Organization.objects.values_list("pk", "name"))}
        with translation.override("en"):
            for report in reports:
                self.stdout.write(describe(report, names))
        broken = [r for r in reports if not r.ok]
        if broken:
            raise CommandError(f"{len(broken)} of {len(reports)} audit chains are broken.", returncode=1)
        self.stdout.write(f"All {len(reports)} audit chains are whole.")
