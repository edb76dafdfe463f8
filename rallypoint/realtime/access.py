"""Who may read a site's stream, and what of it: the database side of the WebSocket endpoint.

Everything here is synchronous ORM code; the endpoint runs it in its thread
pool. A :class:`Viewer` is what the endpoint knows about one socket; it is
checked again every few seconds by :func:`recheck` (in one batch for all
sockets of the process), and a socket whose viewer is no longer valid is closed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from rallypoint.accounts import mfa
from rallypoint.accounts.models import User, UserSession
from rallypoint.accounts.sessions import SIGNED_IN_AT, SessionStore
from rallypoint.alarms import actions as alarm_actions
from rallypoint.alarms.models import Alarm, AlarmRecipient
from rallypoint.evacuation import status as evacuation_status
from rallypoint.people.models import Membership
from rallypoint.realtime.events import MEMBERS, as_frame, session_digest
from rallypoint.realtime.models import SiteStream, StreamEvent
from rallypoint.tenants.middleware import SESSION_KEY as SITE_SESSION_KEY
from rallypoint.tenants.models import Site, SuperAdmin
from rallypoint.tenants.roles import SUPER_ADMIN, Perm, permissions_for
from rallypoint.tenants.scoping import accessible_sites, effective_role

Audience = StreamEvent.Audience

# Why a socket is closed (the close reason sent to the client is the code's name).
SIGNED_OUT = "signed_out"  # session ended, expired, or the user was deactivated or changed password
NO_ACCESS = "no_access"  # the membership was deactivated or the site is gone
CHANGED = "changed"  # another site was chosen or the role changed: reconnect for the new view


@dataclass(frozen=True)
class Viewer:
    session_key: str
    user_id: int
    site_id: int
    membership_id: int | None  # None for a Super-admin without a membership at the site
    role: str
    cockpit: bool  # holds Perm.VIEW_COCKPIT at the site
    password_marker: str  # the user's session auth hash at the handshake: changes with the password
    signed_in_at: float
    session_digest: str = field(init=False, compare=False)  # how the hub names the session

    def __post_init__(self) -> None:
        object.__setattr__(self, "session_digest", session_digest(self.session_key))

    def may_see(self, audience: str, recipients: frozenset[int] | None = None, perm: str = "") -> bool:
        """``recipients``: for the audiences "alarm" and "people", the membership ids it names."""
        if audience == Audience.SITE:
            return True
        named = recipients is not None and self.membership_id is not None and self.membership_id in recipients
        if audience == Audience.PEOPLE:
            return named
        if audience == Audience.PERM:
            return perm in permissions_for(self.role)
        return self.cockpit or (audience == Audience.ALARM and named)


def _lifetime_over(signed_in_at: float) -> bool:
    return time.time() - signed_in_at > settings.SESSION_MAX_AGE_HOURS * 3600


def viewer_for_session(session_key: str) -> Viewer | None:
    """The viewer of a signed-in session, at the site chosen in it; None if it may not read any stream."""
    store = SessionStore(session_key)
    user = get_user(SimpleNamespace(session=store))
    if not user.is_authenticated or not user.is_active:
        return None
    signed_in_at = float(store.get(SIGNED_IN_AT, 0) or 0)
    if _lifetime_over(signed_in_at):
        return None
    sites = accessible_sites(user)
    wanted = store.get(SITE_SESSION_KEY)
    site = sites.filter(pk=wanted).first() if wanted else sites.first()
    if site is None:
        return None
    role = effective_role(user, site)
    perms = permissions_for(role)
    if Perm.VIEW_SITE not in perms:
        return None
    if not mfa.needs_second_step(user) and mfa.must_enroll(user):
        return None  # the enrolment gate lets such a person see nothing but the set-up pages
    membership = Membership.objects.filter(site=site, user=user, is_active=True).only("pk").first()
    return Viewer(session_key=store.session_key, user_id=user.pk, site_id=site.pk,
                  membership_id=membership.pk if membership else None, role=role,
                  cockpit=Perm.VIEW_COCKPIT in perms, password_marker=user.get_session_auth_hash(),
                  signed_in_at=signed_in_at)


def recheck(viewers: list[Viewer]) -> dict[Viewer, str]:
    """Check many viewers at once (a few queries in all). Returns the invalid ones with the reason.

    This runs for every socket of the process every few seconds, so it is written for 10,000 of them:
    each list goes to the database as one parameter (:func:`_any_of`), rows come back as tuples, and
    a session is decoded and a password's session hash computed only when they have changed.
    """
    invalid: dict[Viewer, str] = {}
    sessions = _session_data({v.session_key for v in viewers})
    user_ids = {v.user_id for v in viewers}
    markers = _password_markers(User.objects.filter(pk__in=_any_of(user_ids), is_active=True)
                                .values_list("pk", "password"))
    roles = _roles({(v.user_id, v.site_id) for v in viewers}, user_ids)
    for viewer in viewers:
        data = sessions.get(viewer.session_key)
        if (data is None or viewer.user_id not in markers or str(data.get(SESSION_KEY)) != str(viewer.user_id)
                or not data.get(HASH_SESSION_KEY) or _lifetime_over(float(data.get(SIGNED_IN_AT, 0) or 0))
                or markers[viewer.user_id] != viewer.password_marker):
            invalid[viewer] = SIGNED_OUT
        elif (viewer.user_id, viewer.site_id) not in roles:
            invalid[viewer] = NO_ACCESS
        elif roles[(viewer.user_id, viewer.site_id)] != (viewer.role, viewer.membership_id):
            invalid[viewer] = CHANGED
        elif data.get(SITE_SESSION_KEY) not in (None, viewer.site_id):
            invalid[viewer] = CHANGED
    return invalid


def _any_of(values) -> RawSQL:
    """``field__in=_any_of(values)``: the whole list as ONE parameter (a JSON array on SQLite, an array on
    PostgreSQL). Django would otherwise prepare one parameter per value, which for 1,000 values costs
    more than the query."""
    values = list(values)
    if connection.vendor == "postgresql":
        kind = "text" if values and isinstance(values[0], str) else "bigint"
        return RawSQL(f"SELECT unnest(%s::{kind}[])", [values])  # noqa: S611  # nosec B611 - fixed SQL
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(values)])  # noqa: S611  # nosec B611


#: (user id, password hash) → the session auth hash it gives (an HMAC: computed once, not per re-check)
_markers: dict[tuple[int, str], str] = {}


def _password_markers(rows) -> dict[int, str]:
    result = {}
    for pk, password in rows:
        marker = _markers.get((pk, password))
        if marker is None:
            if len(_markers) > 100_000:
                _markers.clear()
            marker = _markers[(pk, password)] = User(pk=pk, password=password).get_session_auth_hash()
        result[pk] = marker
    return result


#: session key → (stored data, decoded): a re-check decodes (HMAC, zlib, JSON) only what has changed.
_decoded: dict[str, tuple[str, dict]] = {}


def _session_data(keys: set[str]) -> dict[str, dict]:
    store = SessionStore()
    rows = UserSession.objects.filter(session_key__in=_any_of(keys), expire_date__gt=timezone.now()).values_list(
        "session_key", "session_data")
    result = {}
    for key, data in rows:
        known = _decoded.get(key)
        if known is None or known[0] != data:
            known = _decoded[key] = (data, store.decode(data))
        result[key] = known[1]
    for key in keys - result.keys():
        _decoded.pop(key, None)
    if len(_decoded) > 100_000:  # keys of sockets long gone
        _decoded.clear()
    return result


def _roles(pairs: set[tuple[int, int]], user_ids: set[int]) -> dict[tuple[int, int], tuple[str, int | None]]:
    """``{(user, site): (effective role, active membership id)}`` for pairs that still have access."""
    site_ids = {s for _, s in pairs}
    members = {(u, s): (role, pk) for u, s, role, pk in Membership.objects.filter(
        user_id__in=_any_of(user_ids), site_id__in=list(site_ids), is_active=True).values_list(
        "user_id", "site_id", "role", "pk")}
    org_of = dict(Site.objects.filter(pk__in=list(site_ids)).values_list("pk", "organization_id"))
    supers = set(SuperAdmin.objects.filter(user_id__in=_any_of(user_ids)).values_list("user_id", "organization_id"))
    result = {}
    for user_id, site_id in pairs:
        membership = members.get((user_id, site_id))
        if site_id in org_of and (user_id, org_of[site_id]) in supers:
            result[(user_id, site_id)] = (SUPER_ADMIN, membership[1] if membership else None)
        elif membership is not None:
            result[(user_id, site_id)] = membership
    return result


def last_seq(site_id: int) -> int:
    return SiteStream.objects.filter(site_id=site_id).values_list("last_seq", flat=True).first() or 0


def last_seqs(site_ids) -> dict[int, int]:
    return dict(SiteStream.objects.filter(site_id__in=list(site_ids)).values_list("site_id", "last_seq"))


def frames_between(site_id: int, after: int, upto: int | None = None, limit: int = 10_000) -> list[dict]:
    """The site's events with ``after < seq <= upto``, oldest first."""
    events = StreamEvent.objects.for_site(site_id).filter(seq__gt=after)
    if upto is not None:
        events = events.filter(seq__lte=upto)
    return [as_frame(e) for e in events.order_by("seq")[:limit]]


def recipients(site_id: int, alarm_id: int) -> frozenset[int]:
    """Membership ids of the alarm's recipients."""
    return frozenset(AlarmRecipient.objects.for_site(site_id).filter(alarm_id=alarm_id)
                     .values_list("membership_id", flat=True))


@dataclass
class Replay:
    frames: list[dict]  # what the viewer may see of the missed events, oldest first
    upto: int  # every event up to this seq is covered (sent, or not for this viewer)
    complete: bool  # False: more was missed than is replayed, or the client's number is unknown here


def replay(viewer: Viewer, after: int, limit: int) -> Replay:
    """What the viewer missed after ``after``: at most ``limit`` events, else nothing and ``complete=False``."""
    current = last_seq(viewer.site_id)
    if after > current:  # a number from before a restore, or from another installation
        return Replay([], current, False)
    frames = frames_between(viewer.site_id, after, limit=limit + 1)
    if len(frames) > limit:
        return Replay([], max(current, frames[-1]["seq"]), False)
    # Pruned events (older than what the stream keeps) cannot be replayed either.
    complete = not frames or frames[0]["seq"] == after + 1
    upto = max([current, after, *(f["seq"] for f in frames)])
    alarm_ids = {f["alarm"] for f in frames if f["audience"] == Audience.ALARM}
    mine: set[int] = set()
    if alarm_ids and viewer.membership_id is not None and not viewer.cockpit:
        mine = set(AlarmRecipient.objects.for_site(viewer.site_id).filter(
            alarm_id__in=alarm_ids, membership_id=viewer.membership_id).values_list("alarm_id", flat=True))
    me = frozenset([viewer.membership_id])
    visible = []
    for f in frames:
        if f["audience"] == Audience.PEOPLE:
            named = me if viewer.membership_id in (f.get(MEMBERS) or ()) else None
        else:
            named = me if f["alarm"] in mine else None
        if viewer.may_see(f["audience"], named, f.get("perm", "")):
            visible.append({k: v for k, v in f.items() if k != MEMBERS})
    return Replay(visible, upto, complete)


def mark_seen(viewer: Viewer, alarm_id: int) -> bool:
    """The page showed the alarm: record the in-app receipt if the viewer is one of its recipients."""
    if viewer.membership_id is None:
        return False
    if not AlarmRecipient.objects.for_site(viewer.site_id).filter(
            alarm_id=alarm_id, membership_id=viewer.membership_id).exists():
        return False
    return alarm_actions.mark_seen(alarm_id=alarm_id, membership_id=viewer.membership_id)


# Requests over the socket -------------------------------------------------------------------------

def _refused(exc: Exception) -> dict:
    if isinstance(exc, PermissionDenied):
        return {"type": "refused", "reason": "forbidden"}
    messages = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    return {"type": "refused", "reason": "invalid", "detail": messages}


def request_answer(viewer: Viewer, data: dict) -> dict:
    """``answer``: accept or decline an alarm sent to the viewer. Nothing is read before the answer goes to
    the group writer, which finds the viewer's recipient row of the alarm at their site or refuses (the
    viewer's membership is re-checked every few seconds anyway)."""
    alarm_id = data.get("alarm")
    if viewer.membership_id is None or _id_or_none(alarm_id) is None:
        return {"type": "refused", "reason": "not_found"}
    try:
        recipient = alarm_actions.answer_alarm(alarm=Alarm(pk=alarm_id, site_id=viewer.site_id),
                                               membership=Membership(pk=viewer.membership_id),
                                               answer=data.get("answer"), via="app")
    except PermissionDenied:
        return {"type": "refused", "reason": "forbidden"}
    except ValidationError as exc:
        return _refused(exc)
    return {"type": "ack", "alarm": alarm_id, "answer": recipient.answer}


def request_status(viewer: Viewer, data: dict) -> dict:
    """``status``: a status report in an evacuation, the viewer's own or (roll call, a group's leader)
    someone else's. As with answers, the viewer's membership is not read again (the socket re-checks it every
    few seconds); the alarm is read at most a moment ago and checked again where the report is written."""
    alarm_id, person_id = data.get("alarm"), data.get("person", viewer.membership_id)
    if viewer.membership_id is None or _id_or_none(alarm_id) is None or _id_or_none(person_id) is None:
        return {"type": "refused", "reason": "not_found"}
    alarm = evacuation_status.alarm_for_reports(viewer.site_id, alarm_id)
    if alarm is None:
        return {"type": "refused", "reason": "not_found"}
    at = data.get("at")
    try:
        item = {"membership_id": person_id, "status": data.get("status"),
                "assembly_point_id": _id_or_none(data.get("assembly_point")), "zone_id": _id_or_none(data.get("zone")),
                "note": str(data.get("note") or ""), "at": parse_datetime(at) if isinstance(at, str) else None,
                "client_key": str(data.get("key") or "")}
        [report] = evacuation_status.report_statuses(
            alarm=alarm, reports=[item],
            reporter=evacuation_status.Reporter(Membership(pk=viewer.membership_id, site_id=viewer.site_id),
                                                permissions_for(viewer.role)))
    except ValueError:
        return {"type": "refused", "reason": "invalid"}
    except (PermissionDenied, ValidationError) as exc:  # the alarm asks for no status (any more)
        return _refused(exc)
    if isinstance(report, ValidationError) and "membership_id" in getattr(report, "error_dict", {}):
        return {"type": "refused", "reason": "not_found"}
    if isinstance(report, (PermissionDenied, ValidationError)):
        return _refused(report)
    return {"type": "ack", "alarm": alarm.pk, "person": report.membership_id, "status": report.status}


def _id_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63 else None


#: The requests a client may send over the socket, by type.
REQUESTS = {"answer": request_answer, "status": request_status}
