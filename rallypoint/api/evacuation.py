"""Evacuation through the JSON API: status reports (one, or many at once for a roll call or an offline
queue that syncs), zone reports, the counts and the missing list.

A person reports for themselves; the crisis team (``evacuation.roll_call``) and a group's leaders (a
teacher for her class) report for others; a zone's helpers report their zone. Every write goes through
:mod:`rallypoint.evacuation.status`.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema
from ninja.security import django_auth

from rallypoint.alarms.models import Alarm
from rallypoint.api.alarms import ERRORS, _membership_id, _require_site
from rallypoint.api.auth import AppTokenAuth
from rallypoint.evacuation import rollcall, status
from rallypoint.evacuation.models import Source, StatusReport, Zone
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import Perm

router = Router(tags=["evacuation"])
PEOPLE_ONLY = [AppTokenAuth(), django_auth]
MAX_BATCH = 500
ALARM_FIELDS = status.ALARM_FIELDS


class StatusIn(Schema):
    status: str = Field(description="`safe`, `need_help` or `not_on_site`.")
    membership_id: int | None = Field(None, description="The person reported for; default: yourself.")
    assembly_point_id: int | None = Field(None, description="Where they are: an assembly point …")
    zone_id: int | None = Field(None, description="… or a zone.")
    note: str = Field("", max_length=500)
    at: datetime | None = Field(None, description="When it was marked (an offline queue's time); default: now.")
    client_key: str = Field("", max_length=64, description="Sent again with the same key, it counts once.")


class StatusBatchIn(Schema):
    reports: list[StatusIn] = Field(max_length=MAX_BATCH, description=f"At most {MAX_BATCH} reports.")


class StatusOut(Schema):
    id: int
    membership_id: int
    status: str
    at: datetime


class BatchItemOut(Schema):
    ok: bool
    report: StatusOut | None = None
    detail: str | dict | None = None


class ZoneIn(Schema):
    state: str = Field(description="`cleared`, `remaining` or `blocked`.")
    remaining: int = Field(0, ge=0, le=10_000, description="With `remaining`: how many persons.")
    where: str = Field("", max_length=500, description="With `remaining` or `blocked`: where, what.")
    at: datetime | None = None
    client_key: str = Field("", max_length=64)


class ZoneOut(Schema):
    id: int
    zone_id: int
    state: str
    remaining: int
    at: datetime


class MissingOut(Schema):
    membership_id: int
    name: str
    building: str
    zone: str
    source: str = Field(description="Where the presence came from: app, qr, visitor, api, rollcall.")
    since: datetime


def _reporter(request) -> status.Reporter:
    membership_id = _membership_id(request)
    membership = Membership(pk=membership_id, site_id=request.site.pk) if membership_id is not None else None
    return status.Reporter(membership, frozenset(request.site_perms))


def _alarm(request, alarm_id: int) -> Alarm:
    """An alarm of the caller's site (an evacuation concerns everyone on site, not only those alerted)."""
    # Only what reports and counts read: the whole alarm and scenario cost more to select than the report.
    alarm = (Alarm.objects.for_site(request.site).select_related("scenario").filter(pk=alarm_id)
             .only(*ALARM_FIELDS).first())
    if alarm is None:
        raise Http404
    return alarm


def _alarm_for_reports(request, alarm_id: int) -> Alarm:
    """As ``_alarm``, read at most a moment ago: see :func:`status.alarm_for_reports`."""
    alarm = status.alarm_for_reports(request.site.pk, alarm_id)
    if alarm is None:
        raise Http404
    return alarm


def _report_out(report: StatusReport) -> dict:
    return {"id": report.pk, "membership_id": report.membership_id, "status": report.status, "at": report.at}


def _item(request, payload: StatusIn, reporter: status.Reporter) -> dict:
    data = payload.dict()
    if data["membership_id"] is None:
        if reporter.membership is None:
            raise ValidationError({"membership_id": _("Say whom the report is for.")})
        data["membership_id"] = reporter.membership.pk
    return data


@router.post("/alarms/{alarm_id}/status", response={200: StatusOut, **ERRORS}, auth=PEOPLE_ONLY)
def report_status(request, alarm_id: int, payload: StatusIn):
    """Report a status: your own, or (crisis team, a group's leader) someone else's."""
    _require_site(request)
    alarm = _alarm_for_reports(request, alarm_id)
    reporter = _reporter(request)
    [result] = status.report_statuses(alarm=alarm, reports=[_item(request, payload, reporter)], reporter=reporter,
                                      via=Source.API if reporter.membership is None else Source.APP)
    if isinstance(result, Exception):
        raise result
    return _report_out(result)


@router.post("/alarms/{alarm_id}/statuses", response={200: list[BatchItemOut], **ERRORS}, auth=PEOPLE_ONLY)
def report_statuses(request, alarm_id: int, payload: StatusBatchIn):
    """Several reports at once (a roll call's marks, an offline queue that syncs); answered per item, in
    order. When two marks for a person conflict, the one made last (`at`) counts; both are kept."""
    _require_site(request)
    alarm = _alarm_for_reports(request, alarm_id)
    reporter = _reporter(request)
    items = []
    for report in payload.reports:
        try:
            items.append(_item(request, report, reporter))
        except ValidationError as exc:
            items.append({"error": exc})
    good = [i for i in items if "error" not in i]
    written = iter(status.report_statuses(alarm=alarm, reports=good, reporter=reporter))
    out = []
    for item in items:
        result = item["error"] if "error" in item else next(written)
        if isinstance(result, StatusReport):
            out.append({"ok": True, "report": _report_out(result)})
        else:
            out.append({"ok": False, "detail": _problem(result)})
    return out


def _problem(exc: Exception) -> str | dict:
    if isinstance(exc, ValidationError):
        return exc.message_dict if hasattr(exc, "error_dict") else " ".join(exc.messages)
    return _("You may not report for this person.")


@router.post("/alarms/{alarm_id}/zones/{zone_id}", response={200: ZoneOut, **ERRORS}, auth=PEOPLE_ONLY)
def report_zone(request, alarm_id: int, zone_id: int, payload: ZoneIn):
    """An evacuation helper reports their zone: cleared, persons remaining (how many, where), or blocked."""
    _require_site(request)
    alarm = _alarm(request, alarm_id)
    zone = Zone.objects.for_site(request.site).filter(pk=zone_id).first()
    if zone is None:
        raise Http404
    report = status.report_zone(alarm=alarm, zone=zone, reporter=_reporter(request), **payload.dict())
    return {"id": report.pk, "zone_id": zone.pk, "state": report.state, "remaining": report.remaining,
            "at": report.at}


@router.get("/alarms/{alarm_id}/evacuation", response={200: dict, **ERRORS}, auth=PEOPLE_ONLY)
def evacuation_counts(request, alarm_id: int):
    """People on site, statuses, accounted for, per zone and assembly point (numbers only; crisis team)."""
    _require_site(request)
    if Perm.VIEW_COCKPIT not in request.site_perms:
        raise PermissionDenied
    return rollcall.counts(_alarm(request, alarm_id))


@router.get("/alarms/{alarm_id}/missing", response={200: list[MissingOut], **ERRORS}, auth=PEOPLE_ONLY)
def missing(request, alarm_id: int):
    """On site, concerned by the alarm and without a status: with their last known place (roll call)."""
    _require_site(request)
    if Perm.ROLL_CALL not in request.site_perms:
        raise PermissionDenied
    alarm = _alarm(request, alarm_id)
    return [{"membership_id": row.membership_id, "name": row.name, "building": row.building,
             "zone": row.zone, "source": row.place.source, "since": row.place.since}
            for row in rollcall.missing(alarm)]
