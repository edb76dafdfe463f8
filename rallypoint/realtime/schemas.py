"""One schema per type of live event: what its payload holds and who may receive it.

:func:`rallypoint.realtime.events.append` refuses an event whose type is not registered here, whose
audience is not the one its type allows, or whose payload does not match its schema; a client can rely on
every field below. ``tests/test_events.py`` raises each type through the real actions and checks what a
client receives, and that the pages' scripts listen only for registered types (Zulip's event schemas and
``test_events.py`` are the model).

Payloads hold ids, counts and the alarm's own texts, never personal data: a name reaches a client only in
an event of the ``people`` or ``perm`` audience whose schema says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class EventType:
    name: str
    payload: type[Payload]
    audiences: frozenset[str]  # the audiences an event of this type may be sent to


_types: dict[str, EventType] = {}


def register(name: str, *audiences: str):
    """Class decorator: the payload schema of the event type ``name``, sent to one of ``audiences``."""

    def decorate(payload: type[Payload]) -> type[Payload]:
        if name in _types:
            raise ValueError(f"event type {name!r} is registered twice")
        _types[name] = EventType(name, payload, frozenset(audiences))
        return payload

    return decorate


def types() -> dict[str, EventType]:
    return dict(_types)


class SchemaError(ValueError):
    pass


def check(name: str, audience: str, payload: dict) -> None:
    """Raise :class:`SchemaError` unless ``payload`` is a valid event of type ``name`` for ``audience``."""
    kind = _types.get(name)
    if kind is None:
        raise SchemaError(f"unknown event type {name!r}")
    if audience not in kind.audiences:
        raise SchemaError(f"event type {name!r} is not for the audience {audience!r}")
    try:
        kind.payload.model_validate(payload)
    except ValidationError as exc:
        raise SchemaError(f"payload of {name!r} does not match its schema: {exc.error_count()} error(s)") from exc


# Alarms ------------------------------------------------------------------------------------------

class PublicAlarm(Payload):
    """What every recipient may see of an alarm (``alarms.actions.public_alarm``)."""

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
    state: str
    location: str
    building_id: int | None
    floor_id: int | None
    zone_id: int | None
    evacuates: str
    latitude: float | None
    longitude: float | None
    answers: list[dict[str, str]]
    note: str
    started_at: str
    ended_at: str | None
    end_reason: str
    triggered_by: int | None


class AlarmChange(Payload):
    """An alarm raised, changed or ended: the alarm as it is now, and what happened (``change``: the
    timeline event's kind) with its figures."""

    alarm: PublicAlarm
    change: str
    # triggered
    recipients: int | None = None
    deliveries: int | None = None
    source: str | None = None
    # updated
    fields: list[str] | None = None
    # level raised (from → to) / escalated
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    added: int | None = None
    escalated: bool | None = None
    rule: str | None = None
    accepted: int | None = None
    needed: int | None = None
    # ended
    reason: str | None = None


register("alarm.raised", "alarm")(AlarmChange)
register("alarm.changed", "alarm")(AlarmChange)
register("alarm.ended", "alarm")(AlarmChange)


@register("alarm.counts", "cockpit")
class AlarmCounts(Payload):
    alarm_id: int
    counts: dict


# Evacuation ---------------------------------------------------------------------------------------

class StatusChange(Payload):
    membership: int
    status: str
    assembly_point: int | None
    zone: int | None
    at: str
    by: int | None  # who reported it (membership id); None: a system


@register("evacuation.statuses", "perm")
class EvacuationStatuses(Payload):
    """New current statuses of people in an evacuation, for the roll-call pages (ids only: the pages
    hold the names of the people they may see)."""

    alarm_id: int
    changes: list[StatusChange]


@register("evacuation.zone", "cockpit")
class EvacuationZone(Payload):
    alarm_id: int
    zone: int
    state: str
    remaining: int
    at: str


@register("evacuation.counts", "cockpit")
class EvacuationCounts(Payload):
    alarm_id: int
    counts: dict
