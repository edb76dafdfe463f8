"""Raising, updating, answering, escalating and ending alarms.

Each function checks permission (``user=None`` with an ``api_key`` is another
system; ``user=None`` alone is Rallypoint itself, e.g. an escalation), then
writes in one transaction: the alarm, its timeline event, one recipient row
per person, one delivery row per recipient × channel (the outbox), the audit
entry and the stream event. Workers and clients learn of it only after commit.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from rallypoint.accounts.models import User
from rallypoint.alarms.models import Alarm, AlarmEvent, AlarmRecipient, Level, Scenario
from rallypoint.alarms.placing import place_text
from rallypoint.audit.actions import record
from rallypoint.lib.bulk import insert_rows
from rallypoint.lib.groupcommit import GroupCommit
from rallypoint.notify.models import Delivery, time_ordered_key_sql
from rallypoint.people.models import Group, Membership
from rallypoint.realtime import events
from rallypoint.realtime.models import StreamEvent
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import SUPER_ADMIN, Perm, Role
from rallypoint.tenants.scoping import effective_role, has_perm

#: Follow-up messages (update, all-clear) go only where a person reads them anyway, never as a call.
FOLLOW_UP_CHANNELS = {"push", "email", "sms", "apprise"}


def membership_of(user, site: Site) -> Membership | None:
    if user is None or not user.is_authenticated:
        return None
    return Membership.objects.filter(site=site, user=user, is_active=True).first()


def can_trigger(user, site: Site, scenario: Scenario) -> bool:
    """Scenario rules: the listed roles or groups; no list at all means everyone at the site."""
    if scenario.site_id != site.pk or not scenario.is_active:
        return False
    role = effective_role(user, site)
    if role is None or not has_perm(user, site, Perm.TRIGGER_ALARMS):
        return False
    if role in (SUPER_ADMIN, Role.ADMIN):
        return True
    if not scenario.trigger_roles and not scenario.trigger_groups.exists():
        return True
    if role in scenario.trigger_roles:
        return True
    return scenario.trigger_groups.filter(members__user=user, members__site=site).exists()


def triggerable_scenarios(user, site: Site) -> list[Scenario]:
    scenarios = Scenario.objects.for_site(site).filter(is_active=True).prefetch_related("levels")
    return [s for s in scenarios if s.levels.all() and can_trigger(user, site, s)]


def public_alarm(alarm: Alarm) -> dict:
    """What every recipient may see of an alarm: no personal data."""
    scenario, level = alarm.scenario, alarm.level
    return {
        "id": alarm.pk, "scenario": scenario.name, "scenario_id": scenario.pk, "category": scenario.category,
        "priority": scenario.priority, "color": scenario.color, "icon": scenario.icon,
        "sound": "none" if scenario.silent else scenario.sound, "silent": scenario.silent,
        "level": level.name, "level_id": level.pk, "requires_acceptance": level.requires_acceptance,
        "is_drill": alarm.is_drill, "state": alarm.state, "location": alarm.location_text,
        "building_id": alarm.building_id, "floor_id": alarm.floor_id, "zone_id": alarm.zone_id,
        "evacuates": scenario.evacuates,
        "latitude": alarm.latitude, "longitude": alarm.longitude, "answers": alarm.answers,
        "note": alarm.note, "started_at": alarm.started_at.isoformat(),
        "ended_at": alarm.ended_at.isoformat() if alarm.ended_at else None, "end_reason": alarm.end_reason,
        "triggered_by": alarm.triggered_by_id,
    }


def _event(alarm: Alarm, kind: str, actor: Membership | None, data: dict, stream_type: str,
           members: list[int] | None = None) -> None:
    AlarmEvent.objects.create(site_id=alarm.site_id, alarm=alarm, kind=kind, actor=actor, data=data)
    events.append(alarm.site_id, stream_type, {"alarm": public_alarm(alarm), "change": kind, **data},
                  audience=StreamEvent.Audience.ALARM, alarm_id=alarm.pk, members=members)


_RECIPIENT_COLUMNS = ("site_id", "alarm_id", "membership_id", "level_id", "group_ids", "answer", "answered_via",
                      "link_nonce", "added_at")


def _add_recipients(alarm: Alarm, level: Level, people: dict[int, list[int]]) -> int:
    """Recipient rows for the people not yet on the alarm; returns how many were added."""
    known = set(AlarmRecipient.objects.filter(alarm=alarm).values_list("membership_id", flat=True))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = [(alarm.site_id, alarm.pk, pk, level.pk, json.dumps(groups), "", "", secrets.token_hex(8), now)
            for pk, groups in people.items() if pk not in known]
    insert_rows(AlarmRecipient._meta.db_table, _RECIPIENT_COLUMNS, rows)
    return len(rows)


def _named_by(level: Level) -> tuple[str, list]:
    """``(sql, params)``: the ids of the active people the level names, by role, as a person, or as a
    member of one of its groups (the person and their account both active; never a support account,
    see ``MembershipQuerySet.alertable``)."""
    members_table = Group.members.through._meta.db_table
    level_groups = Level.recipient_groups.through._meta.db_table
    level_people = Level.recipient_people.through._meta.db_table
    roles = [r for r in level.recipient_roles if r in Role.values] or [""]
    role_marks = ", ".join(["%s"] * len(roles))
    sql = (
        f"SELECT m.id FROM {Membership._meta.db_table} m "  # noqa: S608  # nosec B608 - names are ours
        f"JOIN {User._meta.db_table} u ON u.id = m.user_id "
        f"WHERE m.site_id = %s AND m.is_active AND u.is_active AND NOT u.is_support "
        f"AND (m.role IN ({role_marks}) "
        f"     OR m.id IN (SELECT gm.membership_id FROM {members_table} gm JOIN {level_groups} lg "
        f"                 ON lg.group_id = gm.group_id WHERE lg.level_id = %s) "
        f"     OR m.id IN (SELECT lp.membership_id FROM {level_people} lp WHERE lp.level_id = %s))")
    return sql, [level.site_id, *roles, level.pk, level.pk]


def _add_level_recipients(alarm: Alarm, level: Level) -> list[int]:
    """Recipient rows for everyone the level names who is not on the alarm yet, each with the ids of
    the level's groups that include them, in one ``INSERT … SELECT``; returns the membership ids added.

    Done by the database: for an alarm to ten thousand people this is most of the trigger's
    transaction, and the alarm reaches nobody before that transaction has committed.
    """
    postgres = connection.vendor == "postgresql"
    members_table = Group.members.through._meta.db_table
    level_groups = Level.recipient_groups.through._meta.db_table
    group_list = "jsonb_agg(gm.group_id)" if postgres else "json_group_array(gm.group_id)"
    no_groups = "'[]'::jsonb" if postgres else "'[]'"
    nonce = "replace(gen_random_uuid()::text, '-', '')" if postgres else "lower(hex(randomblob(16)))"
    named, named_params = _named_by(level)
    sql = (
        f"INSERT INTO {AlarmRecipient._meta.db_table} ({', '.join(_RECIPIENT_COLUMNS)}) "  # noqa: S608  # nosec B608 - names are ours
        f"SELECT m.site_id, %s, m.id, %s, COALESCE(g.ids, {no_groups}), '', '', {nonce}, %s "
        f"FROM {Membership._meta.db_table} m "
        f"LEFT JOIN (SELECT gm.membership_id, {group_list} AS ids FROM {members_table} gm "
        f"           WHERE gm.group_id IN (SELECT lg.group_id FROM {level_groups} lg WHERE lg.level_id = %s) "
        f"           GROUP BY gm.membership_id) g ON g.membership_id = m.id "
        f"WHERE m.id IN ({named}) "
        f"AND NOT EXISTS (SELECT 1 FROM {AlarmRecipient._meta.db_table} r "
        f"                WHERE r.alarm_id = %s AND r.membership_id = m.id) "
        f"RETURNING membership_id")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(sql, [alarm.pk, level.pk, now, level.pk, *named_params, alarm.pk])
        return [row[0] for row in cursor.fetchall()]


def _move_to_level(alarm: Alarm, level: Level) -> int:
    """The alarm's recipients whose level this is now (the level names them) count for it: its
    counts, its escalation rule, its messages. Returns how many were moved."""
    named, named_params = _named_by(level)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AlarmRecipient._meta.db_table} SET level_id = %s "  # noqa: S608  # nosec B608 - names are ours
            f"WHERE alarm_id = %s AND level_id <> %s AND membership_id IN ({named})",
            [level.pk, alarm.pk, level.pk, *named_params])
        return cursor.rowcount


_DELIVERY_COLUMNS = ("site_id, kind, alarm_id, recipient_id, channel, key, event, state, priority, attempts, "
                     "next_attempt_at, claimed_by, created_at, last_error, context")


def _queue(alarm: Alarm, recipients, channels, event: str) -> int:
    """One delivery per recipient (a queryset of AlarmRecipient) and channel: the outbox rows. For an
    information scenario, not on a channel the person muted.

    One ``INSERT … SELECT`` per channel, so that an alarm to ten thousand people is written in
    milliseconds and its event reaches the stream without waiting for Python to build rows.
    """
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    new_key = time_ordered_key_sql(connection.vendor)
    information = alarm.scenario.category == Scenario.Category.INFORMATION
    table, source = Delivery._meta.db_table, AlarmRecipient._meta.db_table
    queued = 0
    with connection.cursor() as cursor:
        for channel in channels:
            # Information messages respect each person's muted channels (My account); alarms reach every channel.
            wanted = recipients.exclude(membership__channel_mutes__channel=channel) if information else recipients
            ids_sql, ids_params = wanted.values("pk").query.sql_with_params()
            cursor.execute(
                f"INSERT INTO {table} ({_DELIVERY_COLUMNS}) "  # noqa: S608  # nosec B608 - table and column names are ours
                f"SELECT %s, 'alarm', %s, r.id, %s, {new_key}, %s, 'pending', %s, 0, %s, '', %s, '', '{{}}' "
                f"FROM {source} r WHERE r.id IN ({ids_sql})",
                [alarm.site_id, alarm.pk, channel, event, alarm.scenario.priority, now, now, *ids_params])
            queued += cursor.rowcount
    return queued


def _told(alarm: Alarm):
    """Recipients of messages outside the app. A silent alarm never reaches the phone of the person who
    raised it: a buzz or a ring could give them away (threat situations)."""
    if alarm.scenario.silent and alarm.triggered_by_id:
        return alarm.recipients.exclude(membership_id=alarm.triggered_by_id)
    return alarm.recipients.all()


def _validate_trigger(site, scenario, level, is_drill, answers, latitude, longitude) -> None:
    if scenario.site_id != site.pk or level.scenario_id != scenario.pk:
        raise ValidationError({"level": _("This level does not belong to the scenario.")})
    if is_drill and not scenario.allow_drill:
        raise ValidationError({"is_drill": _("This scenario cannot be run as a drill.")})
    if (latitude is None) != (longitude is None):
        raise ValidationError({"latitude": _("Give both latitude and longitude, or neither.")})
    if latitude is not None and not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValidationError({"latitude": _("This is not a position on earth.")})
    questions = {q.text: q for q in scenario.questions.all()}
    for item in answers:
        if item.get("question") not in questions:
            raise ValidationError({"answers": _("Unknown question: %(q)s") % {"q": item.get("question")}})
        if len(str(item.get("answer", ""))) > 200:
            raise ValidationError({"answers": _("An answer may have at most 200 characters.")})


def _place(site: Site, building, floor, zone) -> tuple:
    if zone is not None:
        floor = zone.floor
    if floor is not None:
        building = floor.building
    for part in (building, floor, zone):
        if part is not None and part.site_id != site.pk:
            raise ValidationError({"place": _("There is no such place at this site.")})
    return building, floor, zone


def trigger_alarm(*, site: Site, scenario: Scenario, level: Level | None = None, user=None, api_key=None,
                  source: str = Alarm.Source.WEB, is_drill: bool = False, location_text: str = "",
                  latitude: float | None = None, longitude: float | None = None, answers=(), note: str = "",
                  idempotency_key: str = "", building=None, floor=None, zone=None) -> tuple[Alarm, bool]:
    """Raise an alarm. Returns ``(alarm, created)``; a repeated idempotency key returns the first alarm.

    The place: a building, floor or zone of the site's structure (the wider ones follow from the narrower),
    and ``location_text`` as free text; the message's place reads "Building · Floor · Zone — text"."""
    if api_key is not None:
        if (not api_key.is_active or api_key.site_id != site.pk or not scenario.is_active
                or not api_key.scenarios.filter(pk=scenario.pk).exists()):
            raise PermissionDenied
    elif user is not None and not can_trigger(user, site, scenario):
        raise PermissionDenied
    if idempotency_key:
        existing = Alarm.objects.for_site(site).filter(idempotency_key=idempotency_key).first()
        if existing:
            return existing, False
    level = level or scenario.levels.first()
    if level is None:
        raise ValidationError({"level": _("This scenario has no level yet.")})
    answers = [{"question": str(a.get("question", "")), "answer": str(a.get("answer", ""))} for a in answers]
    _validate_trigger(site, scenario, level, is_drill, answers, latitude, longitude)
    building, floor, zone = _place(site, building, floor, zone)
    location_text = place_text(building, floor, zone, location_text.strip())
    actor = membership_of(user, site)
    try:
        with transaction.atomic():
            now = timezone.now()
            alarm = Alarm.objects.create(
                site=site, scenario=scenario, level=level, is_drill=is_drill, location_text=location_text,
                building=building, floor=floor, zone=zone,
                latitude=latitude, longitude=longitude, answers=answers, note=note.strip(), source=source,
                triggered_by=actor, api_key=api_key, idempotency_key=idempotency_key, started_at=now,
                level_since=now)
            members = _add_level_recipients(alarm, level)
            recipients = len(members)
            queued = _queue(alarm, alarm.recipients.all(), [c for c in level.channels if c == "inapp"], "triggered")
            queued += _queue(alarm, _told(alarm), [c for c in level.channels if c != "inapp"], "triggered")
            record(actor=user, organization=site.organization, site=site, action="alarm.triggered",
                   object_type="alarm", object_id=alarm.pk,
                   changes={"scenario": [None, scenario.name], "level": [None, level.name],
                            "drill": [None, is_drill], "source": [None, source],
                            "api_key": [None, api_key.prefix if api_key else None]})
            _event(alarm, AlarmEvent.Kind.TRIGGERED, actor,
                   {"recipients": recipients, "deliveries": queued, "source": source}, "alarm.raised",
                   members=members)
    except IntegrityError:
        if not idempotency_key:
            raise
        return Alarm.objects.for_site(site).get(idempotency_key=idempotency_key), False
    return alarm, True


def _require_manage(user, alarm: Alarm) -> Membership | None:
    if user is not None and not has_perm(user, alarm.site, Perm.MANAGE_ALARMS):
        raise PermissionDenied
    if not alarm.is_active:
        raise ValidationError(_("This alarm has already ended."))
    return membership_of(user, alarm.site)


def update_alarm(*, user, alarm: Alarm, note: str | None = None, location_text: str | None = None) -> Alarm:
    """Change the extra information or location; recipients get the update."""
    with transaction.atomic():
        alarm = Alarm.objects.select_for_update().select_related("scenario", "level").get(pk=alarm.pk)
        actor = _require_manage(user, alarm)
        changes = {}
        if note is not None and note.strip() != alarm.note:
            changes["note"] = [alarm.note, note.strip()]
            alarm.note = note.strip()
        if location_text is not None and location_text.strip() != alarm.location_text:
            changes["location"] = [alarm.location_text, location_text.strip()]
            alarm.location_text = location_text.strip()
        if not changes:
            return alarm
        alarm.save(update_fields=["note", "location_text"])
        _queue(alarm, _told(alarm), [c for c in alarm.level.channels if c in FOLLOW_UP_CHANNELS], "updated")
        record(actor=user, organization=alarm.site.organization, site=alarm.site, action="alarm.updated",
               object_type="alarm", object_id=alarm.pk, changes=changes)
        _event(alarm, AlarmEvent.Kind.UPDATED, actor, {"fields": sorted(changes)}, "alarm.changed")
    return alarm


def raise_level(*, user, alarm: Alarm, level: Level, escalated: bool = False) -> Alarm:
    """Move the alarm to another level of its scenario: its recipients are added and alerted."""
    with transaction.atomic():
        alarm = Alarm.objects.select_for_update().select_related("scenario", "level", "site").get(pk=alarm.pk)
        actor = _require_manage(user, alarm)
        if level.scenario_id != alarm.scenario_id:
            raise ValidationError({"level": _("This level does not belong to the alarm's scenario.")})
        if level.pk == alarm.level_id:
            raise ValidationError({"level": _("The alarm is already at this level.")})
        before = alarm.level.name
        alarm.level, alarm.level_since = level, timezone.now()
        alarm.save(update_fields=["level", "level_since"])
        _move_to_level(alarm, level)
        added = len(_add_level_recipients(alarm, level))
        queued = _queue(alarm, alarm.recipients.filter(level=level), [c for c in level.channels if c == "inapp"],
                        "level_raised")
        queued += _queue(alarm, _told(alarm).filter(level=level), [c for c in level.channels if c != "inapp"],
                         "level_raised")
        record(actor=user, organization=alarm.site.organization, site=alarm.site, action="alarm.level_raised",
               object_type="alarm", object_id=alarm.pk, changes={"level": [before, level.name]})
        _event(alarm, AlarmEvent.Kind.LEVEL_RAISED, actor,
               {"from": before, "to": level.name, "added": added, "deliveries": queued, "escalated": escalated},
               "alarm.changed")
    return alarm


def end_alarm(*, user, alarm: Alarm, reason: str) -> Alarm:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the alarm ends (e.g. “false alarm”, “fire put out”).")})
    if len(reason) > 500:
        raise ValidationError({"reason": _("The reason may have at most 500 characters.")})
    with transaction.atomic():
        alarm = Alarm.objects.select_for_update().select_related("scenario", "level", "site").get(pk=alarm.pk)
        actor = _require_manage(user, alarm)
        alarm.state, alarm.ended_at, alarm.end_reason = Alarm.State.ENDED, timezone.now(), reason
        alarm.save(update_fields=["state", "ended_at", "end_reason"])
        # Nobody needs the alarm message any more once it is over; the all-clear replaces it.
        Delivery.objects.filter(alarm=alarm, state=Delivery.State.PENDING).exclude(channel="inapp").update(
            state=Delivery.State.CANCELLED)
        _queue(alarm, _told(alarm), [c for c in alarm.level.channels if c in FOLLOW_UP_CHANNELS], "ended")
        record(actor=user, organization=alarm.site.organization, site=alarm.site, action="alarm.ended",
               object_type="alarm", object_id=alarm.pk,
               changes={"state": ["active", "ended"], "reason": [None, reason]})
        _event(alarm, AlarmEvent.Kind.ENDED, actor, {"reason": reason}, "alarm.ended")
    return alarm


def answer_alarm(*, alarm: Alarm, membership: Membership, answer: str, via: str) -> AlarmRecipient:
    """Record a person's accept/decline. A later answer replaces an earlier one while the alarm is active.

    Answers arrive by the thousand when an alarm goes out; they are written in groups, one transaction for
    all that arrive together (:mod:`rallypoint.lib.groupcommit`)."""
    if answer not in (AlarmRecipient.Answer.ACCEPTED, AlarmRecipient.Answer.DECLINED):
        raise ValidationError({"answer": _("Answer “accepted” or “declined”.")})
    return _answers.submit((alarm.pk, alarm.site_id, membership.pk, answer, via, translation.get_language()))


def _write_answers(items: list[tuple]) -> list:
    """One transaction for a group of answers (see :func:`answer_alarm`): each item's recipient row (with
    its answer), or the exception that refuses it. A few statements for the whole group, not a few per
    answer; counted after commit, once per alarm."""
    alarms = {a.pk: a for a in Alarm.objects.filter(pk__in={item[0] for item in items})}
    rows = {(alarm_id, membership_id): (pk, answer, answered_at) for pk, alarm_id, membership_id, answer, answered_at
            in AlarmRecipient.objects.filter(alarm_id__in=list(alarms), membership_id__in={i[2] for i in items})
            .values_list("pk", "alarm_id", "membership_id", "answer", "answered_at")}
    results, changes, events, answered = [], {}, [], {}
    now = timezone.now()
    for alarm_id, site_id, membership_id, answer, via, language in items:
        alarm, row = alarms.get(alarm_id), rows.get((alarm_id, membership_id))
        if row is None or alarm is None or alarm.site_id != site_id:
            results.append(PermissionDenied())
            continue
        if not alarm.is_active:
            with translation.override(language):
                results.append(ValidationError(_("This alarm has already ended.")))
            continue
        pk, before, answered_at = row
        if before != answer:
            answered_at = now
            rows[(alarm_id, membership_id)] = (pk, answer, now)
            changes[pk] = (answer, via)
            kind = AlarmEvent.Kind.ACCEPTED if answer == "accepted" else AlarmEvent.Kind.DECLINED
            events.append(AlarmEvent(site_id=site_id, alarm_id=alarm_id, at=now, kind=kind,
                                     actor_id=membership_id, data={"via": via}))
            answered[alarm_id] = alarm
        results.append(AlarmRecipient(pk=pk, site_id=site_id, alarm_id=alarm_id, membership_id=membership_id,
                                      answer=answer, answered_at=answered_at))
    if changes:
        at = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {AlarmRecipient._meta.db_table} SET answer = %s, answered_at = %s, answered_via = %s "  # noqa: S608  # nosec B608 - our table
                "WHERE id = %s", [(answer, at, via, pk) for pk, (answer, via) in changes.items()])
    AlarmEvent.objects.bulk_create(events)
    for alarm in answered.values():
        # Counted after commit: the count reads all of the alarm's rows, which must not hold up the
        # answers queued behind this group for the write lock (SQLite has one).
        transaction.on_commit(lambda alarm=alarm: counts_changed(alarm))
    return results


_answers = GroupCommit("answers", _write_answers)


def counts(alarm: Alarm) -> dict:
    """Answers overall, per level and per group, and delivery states per channel. Numbers only. Once the
    record's personal parts are gone (people.retention), the numbers kept then."""
    if alarm.personal_parts_removed_at is not None:
        return dict(alarm.summary.get("counts", {}))
    answers: dict[str, int] = defaultdict(int)
    by_level: dict[str, dict[str, int]] = defaultdict(lambda: {"accepted": 0, "declined": 0, "none": 0})
    for level_id, answer, n in alarm.recipients.values_list("level_id", "answer").annotate(n=Count("pk")):
        answers[answer] += n
        by_level[str(level_id)][answer or "none"] += n
    total = sum(answers.values())
    by_group: dict[str, dict[str, int]] = defaultdict(lambda: {"accepted": 0, "declined": 0, "none": 0})
    for group_ids, answer in alarm.recipients.exclude(group_ids=[]).values_list("group_ids", "answer"):
        for gid in group_ids:
            by_group[str(gid)][answer or "none"] += 1
    by_channel: dict[str, dict[str, int]] = defaultdict(dict)
    rows = (Delivery.objects.filter(alarm=alarm).exclude(event__in=["updated", "ended"])
            .values_list("channel", "state").annotate(n=Count("pk")))
    for channel, state, n in rows:
        by_channel[channel][state] = n
    seen = alarm.recipients.filter(seen_at__isnull=False).count()
    return {"total": total, "accepted": answers.get("accepted", 0), "declined": answers.get("declined", 0),
            "none": answers.get("", 0), "seen": seen, "by_level": dict(by_level), "by_group": dict(by_group),
            "by_channel": dict(by_channel)}


#: (alarm id, start) → when this process last published the alarm's counts.
_counts_published: dict[tuple[int, str], float] = {}
_counts_lock = threading.Lock()
COUNTS_INTERVAL = 1.0


def counts_changed(alarm: Alarm) -> None:
    """An answer or receipt changed the counts. Publish them now, unless this process did so for the
    alarm less than a second ago: then a worker's next sweep (about every second) publishes them.
    Counting is one pass over the alarm's rows; doing it for each of 5,000 answers a minute would make
    answering slower the bigger the alarm."""
    key, now = (alarm.pk, alarm.started_at.isoformat()), time.monotonic()
    with _counts_lock:
        if now - _counts_published.get(key, 0.0) < COUNTS_INTERVAL:
            return
        _counts_published[key] = now
        if len(_counts_published) > 10_000:
            _counts_published.clear()
    publish_counts(alarm)


def alarms_with_new_answers(since) -> list[int]:
    """Active alarms with an answer or in-app receipt since ``since`` (for the worker's sweep)."""
    return list(AlarmRecipient.objects.filter(alarm__state=Alarm.State.ACTIVE)
                .filter(Q(answered_at__gte=since) | Q(seen_at__gte=since))
                .values_list("alarm_id", flat=True).distinct()[:200])


def publish_counts(alarm: Alarm) -> None:
    """Append the alarm's current counts to the stream (for the cockpit). Counting is a read; only the
    append is a (short) write transaction of its own."""
    payload = {"alarm_id": alarm.pk, "counts": counts(alarm)}
    with transaction.atomic():
        events.append(alarm.site_id, "alarm.counts", payload, audience=StreamEvent.Audience.COCKPIT,
                      alarm_id=alarm.pk)


def mark_seen(*, alarm_id: int, membership_id: int) -> bool:
    """The web app showed the alarm to this person: their in-app delivery is delivered."""
    now = timezone.now()
    with transaction.atomic():
        changed = AlarmRecipient.objects.filter(alarm_id=alarm_id, membership_id=membership_id,
                                                seen_at__isnull=True).update(seen_at=now)
        if changed:
            Delivery.objects.filter(alarm_id=alarm_id, recipient__membership_id=membership_id, channel="inapp",
                                    state=Delivery.State.PENDING).update(state=Delivery.State.DELIVERED,
                                                                         delivered_at=now, sent_at=now)
    return bool(changed)


def due_escalations(now=None):
    """Active alarms whose current level's escalation time has come and whose rule has not run yet."""
    now = now or timezone.now()
    alarms = (Alarm.objects.filter(state=Alarm.State.ACTIVE).exclude(level__escalation="")
              .select_related("level", "scenario", "site", "site__organization"))
    return [a for a in alarms if a.level.pk not in a.escalated_levels
            and a.level_since + timedelta(seconds=a.level.escalate_after_seconds) <= now]


def run_escalations(now=None) -> int:
    """Apply due escalation rules. Safe with several workers: the alarm row is locked while deciding."""
    applied = 0
    for candidate in due_escalations(now):
        with transaction.atomic():
            alarm = Alarm.objects.select_for_update().select_related("level", "scenario", "site").get(pk=candidate.pk)
            level = alarm.level
            if not alarm.is_active or level.pk in alarm.escalated_levels or not level.escalation:
                continue
            alarm.escalated_levels = [*alarm.escalated_levels, level.pk]
            alarm.save(update_fields=["escalated_levels"])
            accepted = alarm.recipients.filter(level=level, answer=AlarmRecipient.Answer.ACCEPTED).count()
            if accepted >= level.escalate_below:
                continue
            _escalate(alarm, level, accepted)
            applied += 1
    return applied


def _escalate(alarm: Alarm, level: Level, accepted: int) -> None:
    data = {"rule": level.escalation, "accepted": accepted, "needed": level.escalate_below}
    if level.escalation == Level.Escalation.RAISE_LEVEL and level.escalate_to_level_id:
        _event(alarm, AlarmEvent.Kind.ESCALATED, None, data, "alarm.changed")
        raise_level(user=None, alarm=alarm, level=level.escalate_to_level, escalated=True)
        return
    if level.escalation == Level.Escalation.NOTIFY_GROUP and level.escalate_to_group_id:
        members = level.escalate_to_group.members.alertable()
        people = {pk: [level.escalate_to_group_id] for pk in members.values_list("pk", flat=True)}
        known = set(alarm.recipients.values_list("pk", flat=True))
        data["added"] = _add_recipients(alarm, level, people)
        data["deliveries"] = _queue(alarm, _told(alarm).exclude(pk__in=known), level.channels, "escalated")
    elif level.escalation == Level.Escalation.NEXT_CHANNEL:
        unanswered = _told(alarm).filter(level=level, answer="")
        data["deliveries"] = _queue(alarm, unanswered, level.escalate_channels, "escalated")
    _event(alarm, AlarmEvent.Kind.ESCALATED, None, data, "alarm.changed")
