"""During an evacuation: people report their status (safe, need help, not on site), or someone reports it
for them (a teacher for her class, the lead at the assembly point); helpers report their zones.

Every report is kept; a person's current status is their newest report by the time it was *made* (``at``:
a mark queued on a phone without network keeps the time it was tapped), so when two marks conflict the last
one wins and both stay on record. Reports arrive by the thousand in the first minutes; they are written in
groups (:mod:`rallypoint.lib.groupcommit`), and each group tells the roll-call pages in one live event.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rallypoint.alarms.models import Alarm, Scenario
from rallypoint.audit.actions import record_many
from rallypoint.audit.models import AuditEntry
from rallypoint.evacuation import rollcall
from rallypoint.evacuation.models import AssemblyPoint, PersonState, Source, Status, StatusReport, Zone, ZoneReport
from rallypoint.lib.groupcommit import GroupCommit
from rallypoint.people.models import Group, Membership
from rallypoint.realtime import events
from rallypoint.realtime.models import StreamEvent
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Perm

MAX_NOTE = 500
#: A client key: what an offline queue sends along so that a mark replayed twice counts once.
_CLIENT_KEY = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: How far in the past a mark's own time may lie before the alarm began (clocks of phones drift).
CLOCK_SLACK = timedelta(minutes=5)


@dataclass(frozen=True)
class Reporter:
    """Who reports: a person (with their permissions at the site), or a system (``membership=None``)."""

    membership: Membership | None
    perms: frozenset = frozenset()

    def may_report_for(self, person: Membership) -> bool:
        if self.membership is None or Perm.ROLL_CALL in self.perms:
            return True
        if self.membership.pk == person.pk:
            return True
        return Group.objects.filter(leaders=self.membership, members=person).exists()


def is_evacuating(alarm: Alarm) -> bool:
    return alarm.is_active and alarm.scenario.evacuates != Scenario.Evacuates.NONE


def _mark_time(alarm: Alarm, at: datetime | None, now: datetime) -> datetime:
    if at is None:
        return now
    if timezone.is_naive(at):
        raise ValidationError({"at": _("Give the time with its time zone.")})
    if at > now + timedelta(seconds=30) or at < alarm.started_at - CLOCK_SLACK:
        raise ValidationError({"at": _("This time lies outside the alarm.")})
    return min(at, now)


def report_status(*, alarm: Alarm, person: Membership, status: str, reporter: Reporter, via: str = Source.APP,
                  assembly_point_id: int | None = None, zone_id: int | None = None, note: str = "",
                  at: datetime | None = None, client_key: str = "") -> StatusReport:
    """Record one status report (see the module text); returns the report (the earlier one when
    ``client_key`` was sent before)."""
    _check_alarm(alarm)
    report = _build(alarm, person, reporter, via, {"status": status, "assembly_point_id": assembly_point_id,
                                                   "zone_id": zone_id, "note": note, "at": at,
                                                   "client_key": client_key})
    return _reports.submit(report)


def report_statuses(*, alarm: Alarm, reports: list[dict], reporter: Reporter, via: str = Source.APP) -> list:
    """Several reports at once (an offline queue syncing, a roll call's marks): each item is a dict with
    ``membership_id`` and the fields of :func:`report_status`; returns per item the report or the exception
    that refused it (the others are written all the same)."""
    _check_alarm(alarm)
    wanted = {r.get("membership_id") for r in reports if isinstance(r.get("membership_id"), int)}
    own = reporter.membership
    if own is not None and own.site_id == alarm.site_id and wanted == {own.pk}:
        people = {own.pk: own}  # a person's own report: who they are was checked when they signed in
    else:
        people = Membership.objects.for_site(alarm.site_id).only("pk", "site_id").in_bulk(list(wanted))
    places = _Places(alarm, reports)
    results: list = []
    for item in reports:
        try:
            person = people.get(item.get("membership_id"))
            if person is None:
                raise ValidationError({"membership_id": _("There is no such person at this site.")})
            results.append(_build(alarm, person, reporter, via, item, places))
        except (ValidationError, PermissionDenied) as exc:
            results.append(exc)
    pending = [(i, r) for i, r in enumerate(results) if isinstance(r, StatusReport)]
    for (i, _report), written in zip(pending, _reports.submit_many([r for _i, r in pending]), strict=True):
        results[i] = written
    return results


def _not_evacuating() -> ValidationError:
    return ValidationError(_("This alarm asks nobody to report a status (it is no evacuation, or it has ended)."))


def _check_alarm(alarm: Alarm) -> None:
    if not is_evacuating(alarm):
        raise _not_evacuating()


#: What status reports read of their alarm.
ALARM_FIELDS = ("pk", "site_id", "state", "started_at", "ended_at", "building_id", "floor_id", "zone_id",
                "scenario__evacuates")
#: How long this process answers "which alarm is that" for status reports from memory (see below).
ALARM_FACTS_SECONDS = 2.0
_alarms_read: dict[tuple[int, int], tuple[float, Alarm]] = {}


def alarm_for_reports(site_id: int, alarm_id: int) -> Alarm | None:
    """The site's alarm with what status reports read of it, as read at most ``ALARM_FACTS_SECONDS`` ago.

    When everyone on a site reports at once, reading the alarm anew for each report cost more than writing
    the report. An alarm that ended meanwhile is refused all the same: the writer checks that the alarm is
    still active in the transaction that writes the reports (``_write_reports``)."""
    key = (site_id, alarm_id)
    now = time.monotonic()
    known = _alarms_read.get(key)
    if known is not None and known[0] > now:
        return known[1]
    alarm = Alarm.objects.filter(site_id=site_id, pk=alarm_id).select_related("scenario").only(*ALARM_FIELDS)[:1]
    alarm = alarm[0] if alarm else None
    if alarm is not None:
        if len(_alarms_read) > 1000:
            _alarms_read.clear()
        _alarms_read[key] = (now + ALARM_FACTS_SECONDS, alarm)
    return alarm


def forget_alarms() -> None:
    """For tests, whose databases start over and reuse ids."""
    _alarms_read.clear()


class _Places:
    """The assembly points and zones a group of reports names, read at once."""

    def __init__(self, alarm: Alarm, items: list[dict]):
        self.alarm = alarm
        wanted = {name: {i.get(f"{name}_id") for i in items} - {None} for name in ("assembly_point", "zone")}
        self.points = AssemblyPoint.objects.for_site(alarm.site_id).in_bulk(
            [v for v in wanted["assembly_point"] if isinstance(v, int)])
        self.zones = Zone.objects.for_site(alarm.site_id).in_bulk([v for v in wanted["zone"] if isinstance(v, int)])

    def of(self, item: dict):
        point_id, zone_id = item.get("assembly_point_id"), item.get("zone_id")
        point, zone = self.points.get(point_id), self.zones.get(zone_id)
        if point_id is not None and point is None:
            raise ValidationError({"assembly_point": _("There is no such assembly point at this site.")})
        if zone_id is not None and zone is None:
            raise ValidationError({"zone": _("There is no such zone at this site.")})
        return point, zone


def _build(alarm: Alarm, person: Membership, reporter: Reporter, via: str, item: dict,
           places: _Places | None = None) -> StatusReport:
    """A checked, unsaved report (raises ValidationError or PermissionDenied)."""
    status, note, client_key = item.get("status"), (item.get("note") or "").strip(), item.get("client_key") or ""
    if status not in Status.values:
        raise ValidationError({"status": _("Report “safe”, “need_help” or “not_on_site”.")})
    if person.site_id != alarm.site_id or not reporter.may_report_for(person):
        raise PermissionDenied
    if len(note) > MAX_NOTE:
        raise ValidationError({"note": _("A note may have at most %(n)d characters.") % {"n": MAX_NOTE}})
    if client_key and not _CLIENT_KEY.fullmatch(client_key):
        raise ValidationError({"client_key": _("Use up to 64 letters, digits, dots, colons or dashes.")})
    now = timezone.now()
    point, zone = (places or _Places(alarm, [item])).of(item)
    return StatusReport(site_id=alarm.site_id, alarm_id=alarm.pk, membership_id=person.pk, status=status,
                        assembly_point=point, zone=zone, note=note,
                        reported_by_id=reporter.membership.pk if reporter.membership else None, via=via,
                        at=_mark_time(alarm, item.get("at"), now), received_at=now, client_key=client_key)


_UPSERT_STATE = """
INSERT INTO evacuation_personstate (site_id, alarm_id, membership_id, status, assembly_point_id, zone_id, at,
                                    report_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (alarm_id, membership_id) DO UPDATE SET
    status = excluded.status, assembly_point_id = excluded.assembly_point_id, zone_id = excluded.zone_id,
    at = excluded.at, report_id = excluded.report_id
WHERE excluded.at >= evacuation_personstate.at
"""


def _write_reports(reports: list[StatusReport]) -> list:
    """One transaction for a group of reports: the reports, the people's current states (the newest mark
    wins), one live event per alarm for the roll-call pages; the counts after commit. A report whose alarm
    is no longer active is refused (its result is the ValidationError)."""
    original = reports
    active = set(Alarm.objects.filter(pk__in={r.alarm_id for r in reports}, state=Alarm.State.ACTIVE)
                 .values_list("pk", flat=True))
    refused = {id(r) for r in reports if r.alarm_id not in active}
    reports = [r for r in reports if r.alarm_id in active]
    keyed = [r for r in reports if r.client_key]
    known = {}
    if keyed:
        for row in StatusReport.objects.filter(alarm_id__in={r.alarm_id for r in keyed},
                                               client_key__in=[r.client_key for r in keyed]):
            known[(row.alarm_id, row.client_key)] = row
    results, fresh, seen = [], [], {}
    for report in reports:
        key = (report.alarm_id, report.client_key)
        if report.client_key and (key in known or key in seen):
            results.append(known.get(key) or seen[key])
            continue
        if report.client_key:
            seen[key] = report
        fresh.append(report)
        results.append(report)
    StatusReport.objects.bulk_create(fresh)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(_UPSERT_STATE, [
            (r.site_id, r.alarm_id, r.membership_id, r.status, r.assembly_point_id, r.zone_id, adapt(r.at), r.pk)
            for r in fresh])
    _audit_marks(fresh)
    by_alarm: dict[int, list[StatusReport]] = {}
    for report in fresh:
        by_alarm.setdefault(report.alarm_id, []).append(report)
    for alarm_id, rows in by_alarm.items():
        events.append(rows[0].site_id, "evacuation.statuses", {"alarm_id": alarm_id, "changes": [
            {"membership": r.membership_id, "status": r.status, "assembly_point": r.assembly_point_id,
             "zone": r.zone_id, "at": r.at.isoformat(), "by": r.reported_by_id} for r in rows]},
            audience=StreamEvent.Audience.PERM, perm=Perm.ROLL_CALL, alarm_id=alarm_id)
        transaction.on_commit(lambda alarm_id=alarm_id: counts_changed(alarm_id))
    if refused:  # the alarm ended after the report was checked: refused, in the order the reports came
        written = iter(results)
        results = [_not_evacuating() if id(r) in refused else next(written) for r in original]
    return results


def _audit_marks(reports: list[StatusReport]) -> None:
    """Who marked whom, when: one audit entry per alarm and person who reported for others (a lead's roll
    call, a teacher's class), naming the people (ids) per status. A person's own report is on record as
    the report itself and needs no entry."""
    marks: dict[tuple[int, int], list[StatusReport]] = {}
    for report in reports:
        if report.reported_by_id is not None and report.reported_by_id != report.membership_id:
            marks.setdefault((report.alarm_id, report.reported_by_id), []).append(report)
    if not marks:
        return
    users = dict(Membership.objects.filter(pk__in={by for _alarm, by in marks}).values_list("pk", "user_id"))
    organizations = dict(Site.objects.filter(pk__in={r.site_id for r in reports}).values_list(
        "pk", "organization_id"))
    entries = []
    for (alarm_id, by), rows in marks.items():
        people: dict[str, list[int]] = {}
        for row in rows:
            people.setdefault(row.status, []).append(row.membership_id)
        entries.append(AuditEntry(organization_id=organizations[rows[0].site_id], site_id=rows[0].site_id,
                                  actor_id=users.get(by), action="evacuation.marked", object_type="alarm",
                                  object_id=str(alarm_id), at=rows[0].received_at,
                                  changes={status: [None, sorted(ids)] for status, ids in people.items()}))
    record_many(entries)


_reports = GroupCommit("status-reports", _write_reports)


# Zones -----------------------------------------------------------------------------------------

def may_report_zone(reporter: Reporter, zone: Zone) -> bool:
    if reporter.membership is None or Perm.ROLL_CALL in reporter.perms:
        return True
    return zone.duties.filter(membership=reporter.membership).exists()


def report_zone(*, alarm: Alarm, zone: Zone, state: str, reporter: Reporter, remaining: int = 0, where: str = "",
                at: datetime | None = None, client_key: str = "") -> ZoneReport:
    """An evacuation helper reports their zone: cleared, persons remaining (how many, where), or blocked."""
    if state not in ZoneReport.State.values:
        raise ValidationError({"state": _("Report “cleared”, “remaining” or “blocked”.")})
    if not is_evacuating(alarm):
        raise ValidationError(_("This alarm asks nobody to report a status (it is no evacuation, or it has "
                                "ended)."))
    if zone.site_id != alarm.site_id or not may_report_zone(reporter, zone):
        raise PermissionDenied
    if state == ZoneReport.State.REMAINING and not 0 < remaining <= 10_000:
        raise ValidationError({"remaining": _("Say how many persons remain.")})
    where = (where or "").strip()
    if len(where) > MAX_NOTE:
        raise ValidationError({"where": _("A note may have at most %(n)d characters.") % {"n": MAX_NOTE}})
    if client_key and not _CLIENT_KEY.fullmatch(client_key):
        raise ValidationError({"client_key": _("Use up to 64 letters, digits, dots, colons or dashes.")})
    now = timezone.now()
    with transaction.atomic():
        if client_key:
            earlier = ZoneReport.objects.filter(alarm=alarm, client_key=client_key).first()
            if earlier is not None:
                return earlier
        report = ZoneReport.objects.create(
            site_id=alarm.site_id, alarm=alarm, zone=zone, state=state,
            remaining=remaining if state == ZoneReport.State.REMAINING else 0, where=where,
            reported_by=reporter.membership, at=_mark_time(alarm, at, now), received_at=now, client_key=client_key)
        events.append(alarm.site_id, "evacuation.zone", {
            "alarm_id": alarm.pk, "zone": zone.pk, "state": state, "remaining": report.remaining,
            "at": report.at.isoformat()}, audience=StreamEvent.Audience.COCKPIT, alarm_id=alarm.pk)
        transaction.on_commit(lambda: counts_changed(alarm.pk))
    return report


# Counts for the cockpit ---------------------------------------------------------------------------

_counts_published: dict[int, float] = {}
_counts_cost: dict[int, float] = {}  # how long the alarm's last counting took (seconds)
_counts_pending: set[int] = set()
_counts_lock = threading.Lock()
COUNTS_INTERVAL = 0.25
#: Counting waits at least this many times as long as it took the last time: at 10,000 people on site it
#: reads 20,000 rows, and at four times a second it took up to half of a web process's time from the reports
#: it counts (``benchmarks/evacuation.py``; spacing by its CPU time instead let it take too much again).
COUNTS_SPACING = 5
log = logging.getLogger(__name__)


def _interval(alarm_id: int) -> float:
    return max(COUNTS_INTERVAL, COUNTS_SPACING * _counts_cost.get(alarm_id, 0.0))


def counts_changed(alarm_id: int) -> None:
    """Publish the evacuation's counts now, or, if this process did so less than an interval ago, once when
    the interval is over (counting reads all of the alarm's states: a burst of reports is counted about
    four times a second, less often when counting takes long, and the last report of a burst is never left
    waiting for the worker's sweep)."""
    now = time.monotonic()
    with _counts_lock:
        wait = _counts_published.get(alarm_id, 0.0) + _interval(alarm_id) - now
        if wait > 0:
            if alarm_id not in _counts_pending:
                _counts_pending.add(alarm_id)
                timer = threading.Timer(wait, _publish_later, args=(alarm_id,))
                timer.daemon = True
                timer.start()
            return
        _counts_published[alarm_id] = now
        if len(_counts_published) > 10_000:
            _counts_published.clear()
            _counts_cost.clear()
    _publish_timed(alarm_id)


def _publish_later(alarm_id: int) -> None:
    with _counts_lock:
        _counts_pending.discard(alarm_id)
        _counts_published[alarm_id] = time.monotonic()
    try:
        _publish_timed(alarm_id)
    except Exception as exc:  # the worker's sweep publishes them all the same; this thread must not die loudly
        log.warning("evacuation counts not published: %s", type(exc).__name__, extra={"alarm": alarm_id})
    finally:
        connections.close_all()


def _publish_timed(alarm_id: int) -> None:
    began = time.monotonic()
    try:
        publish_counts(alarm_id)
    finally:
        _counts_cost[alarm_id] = time.monotonic() - began


def publish_counts(alarm_id: int) -> None:
    alarm = Alarm.objects.select_related("scenario").filter(pk=alarm_id).first()
    if alarm is None:
        return
    payload = {"alarm_id": alarm.pk, "counts": rollcall.counts(alarm)}
    with transaction.atomic():
        events.append(alarm.site_id, "evacuation.counts", payload, audience=StreamEvent.Audience.COCKPIT,
                      alarm_id=alarm.pk)


def alarms_with_new_reports(since) -> list[int]:
    """Active alarms with a status or zone report since ``since`` (for the worker's sweep)."""
    ids = set(StatusReport.objects.filter(received_at__gte=since, alarm__state=Alarm.State.ACTIVE)
              .values_list("alarm_id", flat=True).distinct()[:200])
    ids |= set(ZoneReport.objects.filter(received_at__gte=since, alarm__state=Alarm.State.ACTIVE)
               .values_list("alarm_id", flat=True).distinct()[:200])
    return sorted(ids)


def current_states(alarm: Alarm):
    return PersonState.objects.for_site(alarm.site_id).filter(alarm=alarm)
