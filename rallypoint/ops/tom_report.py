"""The live Art. 32 report (GDPR Art. 32(1)(d): "a process for regularly testing, assessing and evaluating the
effectiveness" of the measures).

It walks the measures of the seed sheet (``../shared/seed``) in its order. For each: how Rallypoint carries it
out, a check against this installation as it runs now, the evidence the check found, and a status — met,
attention or not met. Measures outside the software (staff training, physical access, the processor's
contracts, the disaster-recovery drill) are declarations that the organisation records with the date it last
checked them (:class:`~rallypoint.ops.models.MeasureDeclaration`): met when checked within a year.

Shown by ``rallypoint tom-report``, on the page "Art. 32 report" (Super-admins), as a PDF, and e-mailed every
month to the organisation's data-protection officer (:func:`send_monthly`). Evidence is numbers and
settings, never a person's data.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from rallypoint.accounts.mfa import policy_of
from rallypoint.accounts.mfa_models import OrganizationSecurity, Passkey, TotpDevice
from rallypoint.audit import approvals
from rallypoint.audit.chain import verify_all
from rallypoint.audit.models import Approval
from rallypoint.lib.pdf import Document
from rallypoint.notify import outbox
from rallypoint.ops.models import JobState, MeasureDeclaration, ReportSettings
from rallypoint.people.models import AccessReview, Membership
from rallypoint.people.retention import policy_of as retention_of
from rallypoint.tenants.encryption import ring
from rallypoint.tenants.models import Organization, Site, SuperAdmin
from rallypoint.tenants.roles import Role

MET, ATTENTION, NOT_MET = "met", "attention", "not_met"
STATUS_LABELS = {MET: gettext_lazy("met"), ATTENTION: gettext_lazy("attention"), NOT_MET: gettext_lazy("not met")}
#: A declaration older than this needs checking again.
DECLARATION_DAYS = 365


@dataclass
class Finding:
    heading: str  # the seed's heading (German, as in the sheet)
    title: str
    how: str
    status: str = MET
    evidence: list[str] = field(default_factory=list)

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])


@dataclass
class Scope:
    organization: Organization
    sites: list[Site]
    now: object


# --- declarations (outside the software) ---------------------------------------------------------------------

DECLARED = {
    "training": ("Vertraulichkeit", gettext_lazy("Staff are trained in data protection and bound to secrecy")),
    "physical": ("Zutrittskontrolle", gettext_lazy("Physical access to the servers is controlled")),
    "processors": ("Auftragskontrolle", gettext_lazy("Processors are chosen with care and bound by contract")),
    "recovery_drill": ("Wiederherstellbarkeit", gettext_lazy("The disaster-recovery plan is practised")),
}


def _declared(scope: Scope, key: str) -> Finding:
    heading, title = DECLARED[key]
    row = MeasureDeclaration.objects.filter(organization=scope.organization, measure=key).first()
    finding = Finding(heading, str(title), _("A measure outside the software: the organisation records how it is "
                                             "done and when it last checked it."))
    if row is None:
        finding.status = NOT_MET
        finding.evidence.append(_("Not declared yet."))
        return finding
    age = (scope.now.date() - row.checked_on).days
    finding.status = MET if age <= DECLARATION_DAYS else ATTENTION
    finding.evidence += [row.text, _("Last checked on %(date)s (%(days)d days ago).") % {
        "date": row.checked_on.isoformat(), "days": age}]
    return finding


# --- live checks -------------------------------------------------------------------------------------------

def _offered_tls(host: str, port: int) -> list[str] | None:
    """The TLS versions the server at host:port accepts right now (a handshake with each), or None when it
    cannot be reached."""
    offered = []
    for name, version in (("TLS 1.0", ssl.TLSVersion.TLSv1), ("TLS 1.1", ssl.TLSVersion.TLSv1_1),
                          ("TLS 1.2", ssl.TLSVersion.TLSv1_2), ("TLS 1.3", ssl.TLSVersion.TLSv1_3)):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # noqa: S501 - only which versions
        try:
            with warnings.catch_warnings():  # the old versions are tried on purpose: to see they are refused
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = context.maximum_version = version
            context.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            continue  # this client cannot even try it
        try:
            with socket.create_connection((host, port), timeout=3) as raw, context.wrap_socket(raw):
                offered.append(name)
        except ssl.SSLError:
            continue
        except OSError:
            return None
    return offered


def check_transport(scope: Scope) -> Finding:
    finding = Finding("Zugangskontrolle / Transportkontrolle", _("Encrypted transport (TLS 1.2 or newer only)"),
                      _("The built-in server speaks TLS 1.2 and 1.3 only and sends HSTS; HTTP only redirects. "
                        "Behind a proxy, the proxy must do the same."))
    parts = urlsplit(settings.BASE_URL)
    host = settings.LISTEN_HOST if settings.LISTEN_HOST not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104  # nosec B104 - a comparison
    offered = _offered_tls(host, settings.PORT)
    finding.evidence.append(_("Public address: %(url)s") % {"url": settings.BASE_URL})
    if offered is None:
        finding.status = ATTENTION
        finding.evidence.append(_("The server on %(host)s:%(port)d could not be reached to test it now.") % {
            "host": host, "port": settings.PORT})
        return finding
    finding.evidence.append(_("Offered right now: %(versions)s") % {"versions": ", ".join(offered) or "–"})
    old = [v for v in offered if v in ("TLS 1.0", "TLS 1.1")]
    finding.status = NOT_MET if old or not offered else MET
    if parts.scheme != "https":
        finding.status = NOT_MET
        finding.evidence.append(_("The public address is not https."))
    return finding


def check_sessions(scope: Scope) -> Finding:
    idle, most = settings.SESSION_COOKIE_AGE // 60, settings.SESSION_MAX_AGE_HOURS
    finding = Finding("Zugangskontrolle", _("Sessions close when idle"),
                      _("Server-side sessions close after a time without use and a fixed time after sign-in; app "
                        "tokens expire when unused."))
    finding.evidence += [_("Idle time-out: %(n)d minutes") % {"n": idle},
                         _("At most: %(n)d hours after sign-in") % {"n": most},
                         _("App tokens: %(n)d days unused") % {"n": settings.APP_TOKEN_IDLE_DAYS}]
    finding.status = MET if idle <= 30 and most <= 12 else ATTENTION
    return finding


def _admins(scope: Scope) -> set[int]:
    site_admins = Membership.objects.filter(site__in=scope.sites, role=Role.ADMIN, is_active=True,
                                            user__is_active=True, user__is_support=False)
    ids = set(site_admins.values_list("user_id", flat=True))
    ids |= set(SuperAdmin.objects.filter(organization=scope.organization).values_list("user_id", flat=True))
    return ids


def check_second_factor(scope: Scope) -> Finding:
    finding = Finding("Zugangskontrolle", _("Administrators use a second factor"),
                      _("TOTP or a passkey, with recovery codes; the organisation's rule says who must use one."))
    admins = _admins(scope)
    with_factor = set(TotpDevice.objects.filter(user_id__in=admins, confirmed=True).values_list("user_id", flat=True))
    with_factor |= set(Passkey.objects.filter(user_id__in=admins).values_list("user_id", flat=True))
    rule = dict(OrganizationSecurity.SecondFactor.choices)[policy_of(scope.organization)]
    finding.evidence += [_("Rule: %(rule)s") % {"rule": rule},
                         _("%(with)d of %(all)d administrators and Super-admins have a second factor.") % {
                             "with": len(with_factor), "all": len(admins)}]
    if admins and with_factor >= admins:
        finding.status = MET
    else:
        required = policy_of(scope.organization) != OrganizationSecurity.SecondFactor.OPTIONAL
        finding.status = ATTENTION if required else NOT_MET
        if required:
            finding.evidence.append(_("Those without one are asked to set it up at their next sign-in."))
    return finding


def check_support_account(scope: Scope) -> Finding:
    finding = Finding("Zugangskontrolle", _("The support account"),
                      _("Made with each site so that the operator's support can help; it has no usable password "
                        "until the customer lets support set one, is never alerted, and can be deleted at any "
                        "time."))
    finding.status = MET
    for site in scope.sites:
        support = Membership.objects.filter(site=site, user__is_support=True).select_related("user").first()
        if support is None:
            finding.evidence.append(_("%(site)s: deleted.") % {"site": site.name})
        elif support.user.last_login:
            finding.evidence.append(_("%(site)s: exists, last used %(when)s.") % {
                "site": site.name, "when": timezone.localtime(support.user.last_login).date().isoformat()})
        else:
            finding.evidence.append(_("%(site)s: exists, never used.") % {"site": site.name})
    return finding


def check_access_review(scope: Scope) -> Finding:
    finding = Finding("Zugriffskontrolle", _("Access is reviewed regularly"),
                      _("Every %(days)d days each site reviews who may sign in, with which role, second factor "
                        "and last sign-in; reminders go out; every decision is audited.") % {
                          "days": settings.ACCESS_REVIEW_DAYS})
    worst = MET
    for site in scope.sites:
        done = AccessReview.objects.filter(site=site, completed_at__isnull=False).order_by("-completed_at").first()
        open_review = AccessReview.objects.filter(site=site, completed_at__isnull=True).first()
        if open_review is not None and open_review.is_overdue(scope.now):
            worst = NOT_MET
            finding.evidence.append(_("%(site)s: a review is overdue since %(date)s.") % {
                "site": site.name, "date": timezone.localtime(open_review.due_at).date().isoformat()})
        elif done is not None:
            age = (scope.now - done.completed_at).days
            finding.evidence.append(_("%(site)s: last completed %(days)d days ago.") % {"site": site.name, "days": age})
            if age > settings.ACCESS_REVIEW_DAYS + 14 and worst == MET:
                worst = ATTENTION
        else:
            finding.evidence.append(_("%(site)s: no review completed yet.") % {"site": site.name})
            worst = ATTENTION if worst == MET else worst
    finding.status = worst
    return finding


def check_four_eyes(scope: Scope) -> Finding:
    finding = Finding("Zugriffskontrolle", _("Four-eyes principle for predefined processes"),
                      _("A second authorised person approves before the process runs; the requester never "
                        "approves their own request."))
    chosen = approvals.organization_processes(scope.organization)
    labels = dict(Approval.Process.choices)
    handled = [p for p in approvals.PROCESSES if p in chosen]
    finding.evidence.append(_("Under four eyes: %(list)s") % {"list": ", ".join(str(labels[p]) for p in handled)})
    off = [p for p in approvals.PROCESSES if p not in chosen]
    if off:
        finding.evidence.append(_("Turned off by the organisation: %(list)s") % {
            "list": ", ".join(str(labels[p]) for p in off)})
    alone = Approval.objects.filter(organization=scope.organization, without_second_person=True,
                                    decided_at__gte=scope.now - timedelta(days=90)).count()
    if alone:
        finding.evidence.append(ngettext("%(n)d request in the last 90 days was carried out without a second person.",
                                         "%(n)d requests in the last 90 days were carried out without a second "
                                         "person.", alone) % {"n": alone})
    finding.status = ATTENTION if off or alone else MET
    return finding


def check_separation(scope: Scope) -> Finding:
    finding = Finding("Trennungsgebot", _("Each site is a tenant of its own"),
                      _("All tenant data carries its site; pages and the API reach it only through the scoping "
                        "helpers; a test walks every route with every role against other sites' objects."))
    finding.evidence.append(ngettext("%(n)d site in this organisation.", "%(n)d sites in this organisation.",
                                     len(scope.sites)) % {"n": len(scope.sites)})
    return finding


def check_encryption(scope: Scope) -> Finding:
    finding = Finding("Verschlüsselung", _("Personal data encrypted at rest"),
                      _("AES-256-GCM, bound to site, table, column and row; each person's fields under a data key "
                        "of their own, kept in a separate key store; the key ring rotates without downtime."))
    keys = ring()
    finding.evidence.append(_("Key ring: %(n)d keys, newest %(id)s.") % {"n": len(keys.key_ids), "id": keys.newest_id})
    if not settings.ENCRYPTION_KEYS and settings.KEYRING_FILE.exists():
        age = (scope.now - timezone.datetime.fromtimestamp(settings.KEYRING_FILE.stat().st_mtime,
                                                           tz=timezone.get_current_timezone())).days
        finding.evidence.append(_("The key file last changed %(days)d days ago.") % {"days": age})
        if age > 365:
            finding.status = ATTENTION
            finding.evidence.append(_("Consider a new key: rallypoint rotate-keys --add-key."))
    tokens = [t for t in Membership.objects.filter(site__in=scope.sites).values_list("full_name", flat=True)[:5000]
              if t]
    old = sum(1 for t in tokens if not t.startswith("p1."))
    share = f"{len(tokens) - old}/{len(tokens)}"
    finding.evidence.append(_("Names under a person's own key: %(share)s") % {"share": share})
    if old:
        finding.status = ATTENTION
    return finding


def check_deletion(scope: Scope) -> Finding:
    finding = Finding("Anonymisierung / Pseudonymisierung", _("People delete their own data"),
                      _("In My account, after the password; the data key is destroyed (crypto-shredding); what "
                        "they did stays as “deleted person” for %(days)d days, then goes.") % {
                          "days": settings.FORGOTTEN_DAYS})
    forgotten = Membership.records.filter(site__in=scope.sites, kind=Membership.Kind.FORGOTTEN).count()
    finding.evidence.append(ngettext("%(n)d deleted person still named in records.",
                                     "%(n)d deleted people still named in records.", forgotten) % {"n": forgotten})
    finding.status = _job_status(finding, "personal_data.purge", timedelta(hours=1), scope)
    return finding


def _job_status(finding: Finding, job: str, every: timedelta, scope: Scope) -> str:
    state = JobState.objects.filter(name=job).first()
    if state is None or state.last_finished_at is None:
        finding.evidence.append(_("The job %(job)s has not run yet.") % {"job": job})
        return ATTENTION
    age = scope.now - state.last_finished_at
    finding.evidence.append(_("The job %(job)s last ran %(minutes)d minutes ago.") % {
        "job": job, "minutes": age.total_seconds() // 60})
    if state.last_error:
        finding.evidence.append(_("Its last error: %(error)s") % {"error": state.last_error})
        return NOT_MET
    return MET if age <= every else ATTENTION


def check_transport_device(scope: Scope) -> Finding:
    return Finding("Transportkontrolle", _("Nothing left on the device, no personal data in logs"),
                   _("Sign-out answers Clear-Site-Data and the service worker keeps no cache; logs carry ids, a "
                     "redaction filter and no query strings; personal data never travels in a URL."),
                   evidence=[_("Checked by the test suite on every change (tests/test_logs.py, "
                               "test_nothing_the_pages_stored_stays_on_the_device_after_sign_out).")])


def check_audit(scope: Scope) -> Finding:
    finding = Finding("Eingabekontrolle", _("Changes to structure and personal data are recorded"),
                      _("An audit entry per change (fingerprints of personal values), visible to administrators, "
                        "kept %(days)d days, each site's entries a hash chain.") % {
                          "days": settings.AUDIT_RETENTION_DAYS})
    reports = verify_all(organization_id=scope.organization.pk)
    reports = [r for r in reports if r.site_id is None or r.site_id in {s.pk for s in scope.sites}]
    broken = [r for r in reports if not r.ok]
    finding.evidence.append(_("Hash chains verified now: %(ok)d of %(all)d intact, %(entries)d entries.") % {
        "ok": len(reports) - len(broken), "all": len(reports), "entries": sum(r.entries for r in reports)})
    finding.status = NOT_MET if broken else MET
    return finding


def check_retention(scope: Scope) -> Finding:
    periods = retention_of(scope.organization.pk)
    finding = Finding("Löschung / Speicherbegrenzung", _("Every kind of data has a retention period"),
                      _("One job applies every declared period every 15 minutes; docs/privacy.md gives the "
                        "reasons."))
    finding.evidence.append(_("Alarms' personal parts: %(a)d days; unused push devices: %(p)d days; deactivated "
                              "people: %(d)d days; audit trail and security events: %(au)d days.") % {
        "a": periods["alarm_record_days"], "p": periods["push_idle_days"], "d": periods["deactivated_days"],
        "au": settings.AUDIT_RETENTION_DAYS})
    finding.status = _job_status(finding, "personal_data.purge", timedelta(hours=1), scope)
    return finding


def check_availability(scope: Scope) -> Finding:
    finding = Finding("Verfügbarkeitskontrolle", _("The service watches its own jobs"),
                      _("Delivery workers and scheduled jobs with leases; /readyz for the load balancer."))
    states = list(JobState.objects.all())
    failing = [s.name for s in states if s.last_error]
    late = [s.name for s in states if s.next_run_at and s.next_run_at < scope.now - timedelta(hours=2)]
    finding.evidence.append(_("%(n)d scheduled jobs; failing: %(failing)s; late: %(late)s.") % {
        "n": len(states), "failing": ", ".join(failing) or "–", "late": ", ".join(late) or "–"})
    finding.status = NOT_MET if failing else (ATTENTION if late or not states else MET)
    return finding


def check_resilience(scope: Scope) -> Finding:
    return Finding("Belastbarkeit", _("Load and stress tests"),
                   _("benchmarks/ in the repository measures fan-out, delivery and evacuation against targets; "
                     "the README shows the last figures."), ATTENTION,
                   [_("They are run by the developers, not yet on a schedule against this installation.")])


def check_backups(scope: Scope) -> Finding:
    return Finding("Wiederherstellbarkeit", _("Hourly encrypted backups to two places, restore tested"),
                   _("Not built into this version yet: back up the database, the key file and the key store as "
                     "docs/operations.md says."), NOT_MET,
                   [_("No backup or restore test is recorded by the installation.")])


def check_report(scope: Scope) -> Finding:
    finding = Finding("Art. 32 (1) d", _("The measures are checked regularly"),
                      _("This report, live; e-mailed every month to the data-protection officer."))
    row = ReportSettings.objects.filter(organization=scope.organization).first()
    if row is None or row.data_protection_officer_id is None:
        finding.status = ATTENTION
        finding.evidence.append(_("No data-protection officer named to receive it."))
    elif row.last_sent_at:
        finding.evidence.append(_("Last sent %(date)s.") % {"date": timezone.localtime(row.last_sent_at).date()})
    return finding


CHECKS: list[Callable[[Scope], Finding]] = [
    lambda s: _declared(s, "training"), lambda s: _declared(s, "physical"),
    check_transport, check_sessions, check_second_factor, check_support_account,
    check_access_review, check_four_eyes, check_separation, lambda s: _declared(s, "processors"),
    check_encryption, check_deletion, check_transport_device, check_audit, check_retention,
    check_availability, check_resilience, check_backups, lambda s: _declared(s, "recovery_drill"), check_report,
]


def build(organization: Organization, sites: list[Site] | None = None) -> list[Finding]:
    """Every measure, checked now. ``sites``: the sites the reader may see (all of the organisation's)."""
    scope = Scope(organization, sites if sites is not None else list(organization.sites.order_by("name")),
                  timezone.now())
    return [check(scope) for check in CHECKS]


def summary(findings: list[Finding]) -> dict[str, int]:
    counts = {MET: 0, ATTENTION: 0, NOT_MET: 0}
    for finding in findings:
        counts[finding.status] += 1
    return counts


def as_text(organization: Organization, findings: list[Finding]) -> str:
    counts = summary(findings)
    lines = [_("Art. 32 report of %(org)s, %(when)s") % {"org": organization.name,
                                                          "when": timezone.localtime().strftime("%Y-%m-%d %H:%M")},
             _("%(met)d met, %(attention)d need attention, %(not_met)d not met.") % counts, ""]
    for finding in findings:
        lines.append(f"[{finding.status_label.upper()}] {finding.heading} — {finding.title}")
        lines.append(f"    {finding.how}")
        lines.extend(f"    · {line}" for line in finding.evidence)
        lines.append("")
    return "\n".join(lines)


# --- the monthly e-mail ------------------------------------------------------------------------------------
#: The kind of the monthly message (rendered in rallypoint.ops.report_messages).
MONTHLY = "ops.tom_report"
MONTHLY_DAYS = 30


def send_monthly(now=None) -> int:
    """Queue the report for each organisation's data-protection officer whose last one is 30 days old (a
    daily job). The message carries the counts and a link; the page shows the rest to whoever may see it."""
    now = now or timezone.now()
    sent = 0
    for row in ReportSettings.objects.filter(data_protection_officer__isnull=False).select_related(
            "organization", "data_protection_officer__site"):
        if row.last_sent_at and now - row.last_sent_at < timedelta(days=MONTHLY_DAYS):
            continue
        officer = row.data_protection_officer
        if not officer.is_active or officer.user_id is None:
            continue
        counts = summary(build(row.organization))
        outbox.queue(MONTHLY, site=officer.site, membership=officer, context=counts)
        ReportSettings.objects.filter(pk=row.pk).update(last_sent_at=now)
        sent += 1
    return sent


def as_pdf(organization: Organization, findings: list[Finding]) -> bytes:
    title = _("Art. 32 report")
    when = timezone.localtime().strftime("%Y-%m-%d %H:%M")
    doc = Document(title=title, footer=f"{organization.name} · {title} · {when}")
    doc.heading(title, 18)
    doc.paragraph(f"{organization.name} — {when}", 12, bold=True)
    doc.paragraph(_("%(met)d met, %(attention)d need attention, %(not_met)d not met.") % summary(findings))
    doc.table([_("Measure"), _("How"), _("Evidence"), _("Status")],
              [[f"{f.heading}: {f.title}", f.how, " · ".join(f.evidence), f.status_label] for f in findings],
              [0.24, 0.32, 0.32, 0.12], size=8.5)
    return doc.render()
