"""The handover to the fire brigade: missing persons with their last known place, zones not cleared, persons
who need help, and the time, as a printable page and a PDF in the installation's language."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from rallypoint.alarms.models import Alarm
from rallypoint.evacuation import rollcall
from rallypoint.evacuation.models import PersonState, Status, Zone, ZoneReport
from rallypoint.lib.pdf import Document


@dataclass
class OpenZone:
    name: str
    building: str
    floor: str
    state: str  # "" = no report yet
    remaining: int
    where: str


@dataclass
class NeedsHelp:
    name: str
    place: str
    note: str


@dataclass
class Report:
    alarm: Alarm
    at: datetime
    active: bool
    counts: dict
    missing: list
    zones: list[OpenZone]
    need_help: list[NeedsHelp]


def _open_zones(alarm: Alarm) -> list[OpenZone]:
    affected = rollcall.affected_zone_ids(alarm)
    zones = Zone.objects.for_site(alarm.site_id).select_related("floor__building")
    if affected is not None:
        zones = zones.filter(pk__in=affected)
    newest: dict[int, ZoneReport] = {}
    for report in ZoneReport.objects.for_site(alarm.site_id).filter(alarm=alarm).order_by("at", "pk"):
        newest[report.zone_id] = report
    result = []
    for zone in zones.order_by("floor__building__position", "floor__building__name", "-floor__level", "name"):
        report = newest.get(zone.pk)
        if report is not None and report.state == ZoneReport.State.CLEARED:
            continue
        result.append(OpenZone(zone.name, zone.floor.building.name, zone.floor.name,
                               report.state if report else "", report.remaining if report else 0,
                               report.where if report else ""))
    return result


def _need_help(alarm: Alarm) -> list[NeedsHelp]:
    states = list(PersonState.objects.for_site(alarm.site_id).filter(alarm=alarm, status=Status.NEED_HELP)
                  .select_related("report", "assembly_point", "zone"))
    named = rollcall.names(alarm.site_id, {s.membership_id for s in states})
    rows = [NeedsHelp(named.get(s.membership_id, ""), s.assembly_point.name if s.assembly_point else
                      (s.zone.name if s.zone else ""), s.report.note) for s in states]
    return sorted(rows, key=lambda r: r.name.casefold())


def collect(alarm: Alarm) -> Report:
    """What the handover lists, now; empty lists once the alarm has ended (the lists live only as long as it)."""
    now = timezone.now()
    if not alarm.is_active:
        return Report(alarm, now, False, {}, [], [], [])
    return Report(alarm, now, True, rollcall.counts(alarm), rollcall.missing(alarm), _open_zones(alarm),
                  _need_help(alarm))


def _local(report: Report, moment: datetime, format: str = "DATETIME_FORMAT") -> str:
    return formats.date_format(timezone.localtime(moment, zoneinfo.ZoneInfo(report.alarm.site.time_zone)), format)


def zone_state_text(state: str) -> str:
    return dict(ZoneReport.State.choices).get(state, _("No report yet"))


def render_pdf(report: Report) -> bytes:
    with translation.override(settings.LANGUAGE_CODE):
        return _render(report)


def _render(report: Report) -> bytes:
    alarm = report.alarm
    title = _("Handover to the fire brigade")
    doc = Document(title=title, footer=f"{alarm.site.name} · {title} · {_local(report, report.at)}")
    doc.heading(title, 18)
    doc.paragraph(f"{alarm.site.name} — {alarm.scenario.name}", 12, bold=True)
    doc.paragraph(_("Alarm since %(start)s. Place: %(place)s.") % {
        "start": _local(report, alarm.started_at), "place": alarm.location_text or _("place not given")})
    doc.paragraph(_("As of %(time)s.") % {"time": _local(report, report.at)}, bold=True)
    if not report.active:
        doc.paragraph(_("The alarm has ended: the lists are no longer kept."))
        return doc.render()
    counts = report.counts
    doc.paragraph(_("On site: %(on_site)s · accounted for: %(accounted)s (%(percent)s %%) · missing: %(missing)s · "
                    "need help: %(need_help)s") % {**counts, "missing": len(report.missing)})
    doc.heading(_("Missing persons (%(count)s)") % {"count": len(report.missing)}, 14)
    if report.missing:
        doc.table([_("Name"), _("Building"), _("Zone"), _("Known since")],
                  [[row.name, row.building, row.zone, _local(report, row.place.since, "H:i")]
                   for row in report.missing],
                  [0.36, 0.22, 0.22, 0.20])
    else:
        doc.paragraph(_("Nobody is missing."))
    doc.heading(_("Zones not reported clear (%(count)s)") % {"count": len(report.zones)}, 14)
    if report.zones:
        doc.table([_("Zone"), _("Building / floor"), _("State"), _("Persons remaining, where")],
                  [[z.name, f"{z.building} / {z.floor}", zone_state_text(z.state),
                    f"{z.remaining} · {z.where}" if z.remaining else z.where] for z in report.zones],
                  [0.22, 0.26, 0.2, 0.32])
    else:
        doc.paragraph(_("Every zone is reported clear."))
    doc.heading(_("Persons who need help (%(count)s)") % {"count": len(report.need_help)}, 14)
    if report.need_help:
        doc.table([_("Name"), _("Where"), _("Note")], [[r.name, r.place, r.note] for r in report.need_help],
                  [0.34, 0.26, 0.40])
    else:
        doc.paragraph(_("Nobody has asked for help."))
    return doc.render()
