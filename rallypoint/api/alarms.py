"""Alarms through the JSON API: list what may be triggered, trigger, follow, update, raise, end, answer.

Three kinds of caller:

* a person, signed in in the browser or with an app token (``Authorization: Bearer rp_…``):
  the same rules as in the web app (who may trigger which scenario, the cockpit permission);
* another system with the site's API key (``Authorization: Bearer rpk_…`` or ``X-API-Key``):
  it acts as the site itself, may trigger the scenarios the key is scoped to, and may follow,
  update, raise and end the alarms it raised. Every change it makes is an audit entry.

Every change goes through :mod:`rallypoint.alarms.actions`; ids of another site's alarms,
scenarios or levels are answered like missing ones (404).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Literal

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from ninja import Field, Header, Query, Router, Schema, Status
from ninja.security import APIKeyHeader, django_auth

from rallypoint.alarms import actions
from rallypoint.alarms.models import Alarm, Level, Scenario
from rallypoint.api.auth import AppTokenAuth
from rallypoint.evacuation.models import Building, Zone
from rallypoint.integrations.actions import KEY_PREFIX, authenticate_api_key, record_api_key_use
from rallypoint.integrations.models import ApiKey
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import Perm

router = Router(tags=["alarms"])

MAX_IDEMPOTENCY_KEY = 128
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
LIST_LIMIT = 200


# Authentication ---------------------------------------------------------------------------------

class ApiKeyAuth(APIKeyHeader):
    """The site's API key, in ``X-API-Key: rpk_…`` or ``Authorization: Bearer rpk_…``."""

    param_name = "X-API-Key"
    openapi_description = ("A site's API key (rpk_…), in this header or as 'Authorization: Bearer rpk_…'. "
                           "It acts as the site and may trigger only the scenarios it is scoped to.")

    def _get_key(self, request) -> str | None:
        if request.headers.get(self.param_name):
            return request.headers[self.param_name].strip()
        scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token.startswith(KEY_PREFIX) else None

    def authenticate(self, request, key: str | None) -> ApiKey | None:
        row = authenticate_api_key(key)
        if row is None:
            return None
        request.site, request.site_role, request.site_perms = row.site, None, frozenset()
        request.membership = None
        return row


#: Endpoints another system may call with its key, besides people (app token, browser session).
WITH_KEY = [ApiKeyAuth(), AppTokenAuth(), django_auth]
PEOPLE_ONLY = [AppTokenAuth(), django_auth]


# Schemas ----------------------------------------------------------------------------------------

class Problem(Schema):
    """What went wrong, in the caller's language: a text, or ``{field: [texts]}``."""

    detail: str | dict


class LevelOut(Schema):
    id: int
    name: str
    position: int
    requires_acceptance: bool = Field(description="Recipients are asked to accept or decline.")


class QuestionOut(Schema):
    id: int
    text: str = Field(description="Send it back as `question` in the alarm's answers.")
    answers: list[str] = Field(description="Preset answers (up to five); free text is accepted too.")


class ScenarioOut(Schema):
    """A scenario the caller may trigger, with its levels (first = default) and questions."""

    id: int
    name: str
    category: str = Field(description="`alarm` or `information`.")
    priority: int = Field(description="1 is the most urgent.")
    color: str
    icon: str
    silent: bool = Field(description="No sound or banner on the triggering device.")
    allow_drill: bool
    levels: list[LevelOut]
    questions: list[QuestionOut]


class AnswerIn(Schema):
    question: str = Field(max_length=200, description="The text of one of the scenario's questions.")
    answer: str = Field(max_length=200)


class AlarmIn(Schema):
    """A new alarm. Send the header `Idempotency-Key` so a retried request never raises a second one."""

    scenario_id: int = Field(description="One of the scenarios of GET /api/v1/scenarios.")
    level_id: int | None = Field(None, description="A level of the scenario; default: its first level.")
    location: str = Field("", max_length=300, description="Where, in words (building, floor, room).")
    building_id: int | None = Field(None, description="A building of the site's structure …")
    zone_id: int | None = Field(None, description="… or a zone (its floor and building follow) …")
    zone_code: str | None = Field(None, max_length=40,
                                  description="… or a zone by its external code (a fire panel's detector group).")
    latitude: float | None = Field(None, description="With `longitude`, or neither.")
    longitude: float | None = Field(None, description="With `latitude`, or neither.")
    answers: list[AnswerIn] = Field(default_factory=list, max_length=20,
                                    description="Answers to the scenario's questions.")
    note: str = Field("", max_length=2000, description="Extra information for everyone alerted.")
    is_drill: bool = Field(False, description="A drill is marked as a drill in every message.")


class AnswerOut(Schema):
    question: str
    answer: str


class AlarmOut(Schema):
    """An alarm as every recipient sees it (no personal data)."""

    id: int
    scenario: str
    scenario_id: int
    category: str
    priority: int
    color: str
    icon: str
    sound: str
    silent: bool
    level: str
    level_id: int
    requires_acceptance: bool
    is_drill: bool
    state: str = Field(description="`active` or `ended`.")
    location: str
    latitude: float | None
    longitude: float | None
    answers: list[AnswerOut]
    note: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str
    triggered_by: int | None = Field(description="Id of the person who triggered it; null for a system.")


class CountsOut(Schema):
    """Answers of the recipients, overall and per group, and delivery states per channel."""

    total: int
    accepted: int
    declined: int
    none: int = Field(description="Recipients who have not answered yet.")
    seen: int = Field(description="Recipients whose app has shown the alarm.")
    by_group: dict[str, dict[str, int]] = Field(description="{group id: {accepted, declined, none}}")
    by_channel: dict[str, dict[str, int]] = Field(description="{channel: {delivery state: count}}")


class EventOut(Schema):
    at: datetime
    kind: str = Field(description="triggered, updated, level_raised, escalated, accepted, declined or ended.")
    label: str
    actor_id: int | None = Field(description="Id of the person; null for a system or an escalation.")
    data: dict


class AlarmDetailOut(AlarmOut):
    """An alarm; for holders of the cockpit permission with its counts and timeline."""

    counts: CountsOut | None = None
    timeline: list[EventOut] | None = None


class UpdateIn(Schema):
    note: str | None = Field(None, max_length=2000, description="New extra information; omit to keep.")
    location: str | None = Field(None, max_length=300, description="New location text; omit to keep.")


class LevelIn(Schema):
    level_id: int = Field(description="Another level of the alarm's scenario.")


class EndIn(Schema):
    reason: str = Field(max_length=500, description="Why the alarm ends, e.g. “false alarm”.")


class AnswerAlarmIn(Schema):
    answer: str = Field(description="`accepted` or `declined`.")


class AnsweredOut(Schema):
    alarm_id: int
    answer: str
    answered_at: datetime | None


ERRORS = {400: Problem, 401: Problem, 403: Problem, 404: Problem}


# Helpers ----------------------------------------------------------------------------------------

def _key(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


def _user(request):
    """The person acting, or None when a system acts with the site's key."""
    return None if _key(request) is not None else request.user


def _require_site(request) -> None:
    if getattr(request, "site", None) is None:
        raise PermissionDenied


def _cockpit(request) -> bool:
    return _key(request) is None and Perm.VIEW_COCKPIT in request.site_perms


def _not_found(what: str) -> Status:
    return Status(404, {"detail": what})


def _visible_alarms(request):
    """Alarms the caller may follow: a key its own; the cockpit all; anyone else those sent to them."""
    alarms = Alarm.objects.for_site(request.site).select_related("scenario", "level")
    key = _key(request)
    if key is not None:
        return alarms.filter(api_key=key)
    if _cockpit(request):
        return alarms
    return alarms.filter(recipients__membership__user=request.user, recipients__membership__site=request.site)


def _find_alarm(request, alarm_id: int) -> Alarm:
    alarm = _visible_alarms(request).filter(pk=alarm_id).first()
    if alarm is None:
        raise Http404
    return alarm


def _manageable_alarm(request, alarm_id: int) -> Alarm:
    """An alarm the caller may change; the action itself checks a person's permission."""
    alarm = _find_alarm(request, alarm_id)
    key = _key(request)
    if key is not None and not key.scenarios.filter(pk=alarm.scenario_id).exists():
        raise PermissionDenied
    return alarm


def _scenario_out(scenario: Scenario) -> dict:
    return {"id": scenario.pk, "name": scenario.name, "category": scenario.category,
            "priority": scenario.priority, "color": scenario.color, "icon": scenario.icon,
            "silent": scenario.silent, "allow_drill": scenario.allow_drill,
            "levels": [{"id": lv.pk, "name": lv.name, "position": lv.position,
                        "requires_acceptance": lv.requires_acceptance} for lv in scenario.levels.all()],
            "questions": [{"id": q.pk, "text": q.text, "answers": list(q.answers)} for q in scenario.questions.all()]}


def _detail(request, alarm: Alarm) -> dict:
    out = actions.public_alarm(alarm)
    if _cockpit(request):
        out["counts"] = actions.counts(alarm)
        out["timeline"] = [{"at": e.at, "kind": e.kind, "label": e.get_kind_display(), "actor_id": e.actor_id,
                            "data": e.data} for e in alarm.events.all()]
    return out


def _after_change(request, alarm: Alarm, what: str) -> dict:
    key = _key(request)
    if key is not None:
        record_api_key_use(key, action=what, alarm_id=alarm.pk)
    return _detail(request, Alarm.objects.select_related("scenario", "level").get(pk=alarm.pk))


def _idempotency_key(request, raw: str | None) -> str | Status:
    """The stored form of the caller's key: namespaced per caller, so two callers never share one."""
    if raw is None:
        return ""
    if not raw or len(raw) > MAX_IDEMPOTENCY_KEY or not _PRINTABLE.fullmatch(raw):
        return Status(400, {"detail": {"Idempotency-Key": [
            _("Use up to %(n)d printable characters (letters, digits, punctuation).") % {"n": MAX_IDEMPOTENCY_KEY}]}})
    key = _key(request)
    caller = f"key:{key.pk}" if key is not None else f"user:{request.user.pk}"
    return "api:" + hashlib.sha256(f"{caller}\n{raw}".encode()).hexdigest()


def _trigger_target(request, payload: AlarmIn) -> tuple[Scenario, Level | None] | Status:
    scenario = Scenario.objects.for_site(request.site).filter(pk=payload.scenario_id).first()
    if scenario is None:
        return _not_found(_("There is no such scenario."))
    level = None
    if payload.level_id is not None:
        level = Level.objects.for_site(request.site).filter(pk=payload.level_id).first()
        if level is None:
            return _not_found(_("There is no such level."))
    if not scenario.is_active:
        return Status(403, {"detail": _("This scenario is switched off.")})
    return scenario, level


# Endpoints --------------------------------------------------------------------------------------

@router.get("/scenarios", response={200: list[ScenarioOut], **ERRORS}, auth=WITH_KEY)
def list_scenarios(request):
    """The scenarios the caller may trigger: a key's scope, or what the person's role and groups allow."""
    _require_site(request)
    key = _key(request)
    if key is not None:
        scenarios = [s for s in key.scenarios.filter(is_active=True).prefetch_related("levels", "questions")
                     if s.levels.all()]
    else:
        scenarios = actions.triggerable_scenarios(request.user, request.site)
    return [_scenario_out(s) for s in scenarios]


def _structure_place(request, payload: AlarmIn) -> tuple:
    """The building or zone named by id or code, of the caller's site (422 for one that is not there)."""
    zone = building = None
    if payload.zone_id is not None or payload.zone_code:
        zones = Zone.objects.for_site(request.site)
        zone = (zones.filter(pk=payload.zone_id) if payload.zone_id is not None
                else zones.filter(code=payload.zone_code.strip())).first()
        if zone is None:
            raise ValidationError({"zone_id": _("There is no such zone at this site.")})
    elif payload.building_id is not None:
        building = Building.objects.for_site(request.site).filter(pk=payload.building_id).first()
        if building is None:
            raise ValidationError({"building_id": _("There is no such building at this site.")})
    return building, zone


@router.post("/alarms", response={200: AlarmOut, 201: AlarmOut, **ERRORS, 409: Problem}, auth=WITH_KEY)
def trigger(request, payload: AlarmIn, response: HttpResponse,
            idempotency_key: str | None = Header(
                None, alias="Idempotency-Key",
                description="Up to 128 printable characters, e.g. a UUID. A request repeated with the same key "
                            "answers 200 with the alarm of the first one instead of raising another.")):
    """Trigger an alarm. 201 with the new alarm; 200 with the earlier alarm when the Idempotency-Key was seen."""
    _require_site(request)
    stored = _idempotency_key(request, idempotency_key)
    if isinstance(stored, Status):
        return stored
    target = _trigger_target(request, payload)
    if isinstance(target, Status):
        return target
    scenario, level = target
    key = _key(request)
    building, zone = _structure_place(request, payload)
    try:
        alarm, created = actions.trigger_alarm(
            building=building, zone=zone,
            site=request.site, scenario=scenario, level=level, user=_user(request), api_key=key,
            source=Alarm.Source.API, is_drill=payload.is_drill, location_text=payload.location,
            latitude=payload.latitude, longitude=payload.longitude, answers=[a.model_dump() for a in payload.answers],
            note=payload.note, idempotency_key=stored)
    except PermissionDenied:
        return Status(403, {"detail": _("This API key may not trigger this scenario.") if key is not None
                            else _("You may not trigger this scenario.")})
    if not created and alarm.scenario_id != scenario.pk:
        return Status(409, {"detail": _("This Idempotency-Key was already used for an alarm of another scenario. "
                                         "Use a new key for a new alarm.")})
    if key is not None:
        record_api_key_use(key, action="trigger", alarm_id=alarm.pk, replayed=not created)
    if not created:
        response["Idempotent-Replayed"] = "true"
    alarm = Alarm.objects.select_related("scenario", "level").get(pk=alarm.pk)
    return Status(201 if created else 200, actions.public_alarm(alarm))


@router.get("/alarms", response={200: list[AlarmOut], **ERRORS}, auth=WITH_KEY)
def list_alarms(request, state: Literal["active", "ended", "all"] = Query(
        "active", description="Which alarms: `active` (default), `ended` or `all`; the newest 200.")):
    """Alarms of the site for the cockpit; for a key the alarms it raised; for anyone else those sent to them."""
    _require_site(request)
    alarms = _visible_alarms(request)
    if state != "all":
        alarms = alarms.filter(state=state)
    return [actions.public_alarm(a) for a in alarms[:LIST_LIMIT]]


@router.get("/alarms/{alarm_id}", response={200: AlarmDetailOut, **ERRORS}, auth=WITH_KEY)
def get_alarm(request, alarm_id: int):
    """One alarm; with its counts and timeline for holders of the cockpit permission."""
    _require_site(request)
    return _detail(request, _find_alarm(request, alarm_id))


@router.post("/alarms/{alarm_id}/update", response={200: AlarmDetailOut, **ERRORS}, auth=WITH_KEY)
def update(request, alarm_id: int, payload: UpdateIn):
    """Change the extra information or the location; everyone alerted is told."""
    _require_site(request)
    alarm = _manageable_alarm(request, alarm_id)
    actions.update_alarm(user=_user(request), alarm=alarm, note=payload.note, location_text=payload.location)
    return _after_change(request, alarm, "update")


@router.post("/alarms/{alarm_id}/level", response={200: AlarmDetailOut, **ERRORS}, auth=WITH_KEY)
def change_level(request, alarm_id: int, payload: LevelIn):
    """Move the alarm to another level of its scenario: that level's recipients are added and alerted."""
    _require_site(request)
    alarm = _manageable_alarm(request, alarm_id)
    level = Level.objects.for_site(request.site).filter(pk=payload.level_id).first()
    if level is None:
        return _not_found(_("There is no such level."))
    actions.raise_level(user=_user(request), alarm=alarm, level=level)
    return _after_change(request, alarm, "level")


@router.post("/alarms/{alarm_id}/end", response={200: AlarmDetailOut, **ERRORS}, auth=WITH_KEY)
def end(request, alarm_id: int, payload: EndIn):
    """End the alarm with a reason; everyone alerted gets the all-clear."""
    _require_site(request)
    alarm = _manageable_alarm(request, alarm_id)
    actions.end_alarm(user=_user(request), alarm=alarm, reason=payload.reason)
    return _after_change(request, alarm, "end")


@router.post("/alarms/{alarm_id}/answer", response={200: AnsweredOut, **ERRORS}, auth=PEOPLE_ONLY)
def answer(request, alarm_id: int, payload: AnswerAlarmIn):
    """Accept or decline an alarm sent to you."""
    _require_site(request)
    # Nothing is read first: the answer finds the caller's recipient row of the alarm at this site, or is
    # refused like a missing alarm (404: the same for one that does not exist or was not sent to the caller).
    membership_id = _membership_id(request)
    if membership_id is None:
        raise Http404
    try:
        recipient = actions.answer_alarm(alarm=Alarm(pk=alarm_id, site_id=request.site.pk),
                                         membership=Membership(pk=membership_id), answer=payload.answer, via="api")
    except PermissionDenied:
        raise Http404 from None
    return {"alarm_id": alarm_id, "answer": recipient.answer, "answered_at": recipient.answered_at}


def _membership_id(request) -> int | None:
    """The caller's membership at the site: known from the app token, or from the session's site."""
    if hasattr(request, "membership_id"):
        return request.membership_id
    membership = getattr(request, "membership", None)
    return membership.pk if membership is not None else None
