from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from rallypoint.ops import tom_report
from rallypoint.tenants.models import Organization


class Command(BaseCommand):
    help = ("The live Art. 32 report: every measure of the TOM sheet, checked against this installation now, with "
            "its evidence and status (met / attention / not met). Exits 1 when a measure is not met.")

    def add_arguments(self, parser):
        parser.add_argument("--organization", type=int, help="the organisation's id (default: every organisation)")
        parser.add_argument("--language", choices=["de", "en"], default="en")

    def handle(self, *args, **options):
        organizations = Organization.objects.order_by("pk")
        if options["organization"] is not None:
            organizations = organizations.filter(pk=options["organization"])
            if not organizations.exists():
                raise CommandError(f"There is no organisation {options['organization']}.")
        not_met = False
        with translation.override(options["language"]):
            for organization in organizations:
                findings = tom_report.build(organization)
                not_met |= any(f.status == tom_report.NOT_MET for f in findings)
                self.stdout.write(tom_report.as_text(organization, findings))
        if not_met:
            raise SystemExit(1)
