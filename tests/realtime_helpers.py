"""Helpers for the real-time tests.

:class:`Control` runs a Python process with Django set up on the same database
(and data directory) as a running ``rallypoint run``: the test asks it to
create people and sessions and to trigger alarms through the real actions.
:class:`StreamClient` is a real WebSocket client (the ``websockets`` library, its asyncio
implementation in a background event loop) that opens ``/ws/stream`` the way the browser does.

In the control process (started with :data:`BOOT`), :func:`serve` reads one
JSON command per line on stdin and writes one ``@@rt {json}`` answer line on
stdout (other lines on stdout are log lines).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from contextlib import suppress
from pathlib import Path

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import transaction
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from rallypoint.accounts import apptokens
from rallypoint.accounts.mfa_models import OrganizationSecurity
from rallypoint.accounts.sessions import HANDLE, SIGNED_IN_AT, SessionStore
from rallypoint.alarms import actions as alarm_actions
from rallypoint.alarms.models import Alarm, AlarmRecipient, Scenario
from rallypoint.evacuation.models import PersonState
from rallypoint.integrations.actions import create_api_key
from rallypoint.people.actions import create_person, set_people_active
from rallypoint.people.models import Membership
from rallypoint.realtime import events, hub, schemas
from rallypoint.realtime.models import StreamEvent
from rallypoint.tenants import actions as tenant_actions
from rallypoint.tenants.middleware import SESSION_KEY as SITE_KEY
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.population import add_people
from tests.server import RunningServer, insecure_context

REPO = Path(__file__).resolve().parent.parent


# Event types the tests send (to everyone at a site), registered like the product's own.
@schemas.register("test.marker", "site")
class _Marker(schemas.Payload):
    note: str


@schemas.register("test.burst", "site")
class _Burst(schemas.Payload):
    number: int
    text: str
SESSION_COOKIE = "__Host-rp_session"  # the server runs with TLS
ANSWER = "@@rt "
#: How a control process starts: Django first, then this module (which imports models).
BOOT = ("import os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'rallypoint.settings'); "
        "django.setup(); from tests.realtime_helpers import serve; serve()")
QUIET = {"heartbeat", "pong"}


def control_env(server: RunningServer, database_url: str | None, **extra: str) -> dict[str, str]:
    """The environment of a control process for ``server``: its data directory and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RP_")}
    env.update(RP_DATA_DIR=str(server.data_dir), RP_DEMO="false")
    if database_url:
        env["RP_DATABASE_URL"] = database_url
    env.update(extra)
    return env


class Control:
    """A control process on a server's database (see the module docstring)."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        with log.open("wb") as errors:
            self.process = subprocess.Popen([sys.executable, "-c", BOOT], cwd=REPO, env=env,
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True)

    def __enter__(self) -> Control:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, command: str, **args):
        self.process.stdin.write(json.dumps({"command": command, **args}) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith(ANSWER):
                answer = json.loads(line[len(ANSWER):])
                if "error" in answer:
                    raise RuntimeError(f"control command {command} failed: {answer['error']}")
                return answer["result"]
        raise RuntimeError(f"the control process ended:\n{self.log.read_text(errors='replace')}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _Loop:
    """One event loop in a daemon thread that runs every test WebSocket client of this process.

    The clients use the ``websockets`` asyncio implementation: a TLS socket is then read and written
    by one thread only. The sync client reads in a background thread while the caller's thread writes,
    and OpenSSL's state is not safe for that: about one connection in 500 (one run of this module in
    20) lost its upgrade request after the TLS handshake: the server saw the handshake and no byte
    more, and the client waited 10 s for an answer. The slow client's "[SSL] internal error" was the same.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _guard = threading.Lock()

    @classmethod
    def run(cls, coro):
        with cls._guard:
            if cls._loop is None:
                cls._loop = asyncio.new_event_loop()
                threading.Thread(target=cls._loop.run_forever, name="ws-clients", daemon=True).start()
        # Each step has its own limit (opening, recv, close); this one turns anything else that never
        # ends (a send to a server that stopped reading) into a failure instead of a hung suite.
        return asyncio.run_coroutine_threadsafe(coro, cls._loop).result(timeout=60)


class StreamClient:
    """A WebSocket client of ``/ws/stream``; ``ready`` is the server's answer to the hello."""

    def __init__(self, server: RunningServer, session: str | None, *, last_seq: int | None = None,
                 site: int | None = None, origin: str | None = None, hello: dict | None = None,
                 slow: bool = False):
        """``slow``: a client that reads hardly anything (tiny receive buffer, stops at 2 waiting frames)."""
        headers = {"Cookie": f"{SESSION_COOKIE}={session}"} if session else {}
        url = server.base_url.replace("https://", "wss://", 1) + "/ws/stream"
        self.ws = _Loop.run(self._connect(server, url, headers, origin, slow))
        self.replayed: list[dict] = []
        self.ready: dict | None = None
        self.send(hello or {"type": "hello", "last_seq": last_seq, "site": site})
        if hello is None:
            while self.ready is None:
                frame = self.recv()
                if frame["type"] == "ready":
                    self.ready = frame
                else:
                    self.replayed.append(frame)

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, message: dict) -> None:
        _Loop.run(self.ws.send(json.dumps(message)))

    @staticmethod
    async def _connect(server: RunningServer, url: str, headers: dict, origin: str | None, slow: bool):
        common = {"ssl": insecure_context(), "origin": origin or server.base_url, "additional_headers": headers,
                  "open_timeout": 10, "close_timeout": 2}
        if not slow:
            # A browser takes in every frame that arrives, however busy its page is; so does this client.
            return await connect(url, max_queue=None, **common)
        address = urllib.parse.urlsplit(server.base_url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((address.hostname, address.port))
        return await connect(url, sock=sock, server_hostname="localhost", max_queue=2, **common)

    def recv(self, timeout: float = 10.0, *, quiet: bool = True) -> dict:
        """The next frame (heartbeats and pongs skipped unless ``quiet`` is false); TimeoutError if none."""
        async def next_frame() -> dict:
            async with asyncio.timeout(timeout):
                while True:
                    frame = json.loads(await self.ws.recv())  # cancelling recv() loses no frame
                    if not quiet or frame.get("type") not in QUIET:
                        return frame
        return _Loop.run(next_frame())

    def closed_with(self, timeout: float = 10.0) -> tuple[int, str, list[dict]]:
        """Wait for the server to close: (code, reason, frames received before)."""
        frames = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                frames.append(self.recv(timeout=max(0.01, deadline - time.monotonic())))
        except ConnectionClosed as closed:
            return closed.rcvd.code, closed.rcvd.reason, frames

    def close(self) -> None:
        with suppress(Exception):
            _Loop.run(self.ws.close())


def trigger_via_api(server: RunningServer, api_key: str, scenario: int) -> dict:
    """POST /api/v1/alarms with the site's API key, as a fire panel does; returns the new alarm."""
    host, port = urllib.parse.urlsplit(server.base_url).netloc.split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=insecure_context(), timeout=10)
    conn.request("POST", "/api/v1/alarms", body=json.dumps({"scenario_id": scenario}),
                 headers={"X-API-Key": api_key, "Content-Type": "application/json"})
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 201, body
    return body


def sign_out(server: RunningServer, session: str) -> int:
    """Sign out as the browser does: load a page for the CSRF token, POST /accounts/logout/."""
    return post_form(server, session, "/accounts/logout/", {})


def post_form(server: RunningServer, session: str, path: str, data: dict) -> int:
    """POST a form as the browser does (a page first, for the CSRF token); returns the status."""
    host, port = urllib.parse.urlsplit(server.base_url).netloc.split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=insecure_context(), timeout=10)
    conn.request("GET", "/accounts/profile/", headers={"Cookie": f"{SESSION_COOKIE}={session}"})
    response = conn.getresponse()
    page = response.read().decode()
    csrf = next(cookie.split(";", 1)[0] for cookie in response.headers.get_all("Set-Cookie")
                if cookie.startswith("__Host-rp_csrf="))
    marker = 'name="csrfmiddlewaretoken" value="'
    token = page[page.index(marker) + len(marker):].split('"', 1)[0]
    conn.request("POST", path, body=urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}),
                 headers={"Cookie": f"{SESSION_COOKIE}={session}; {csrf}", "Origin": server.base_url,
                          "Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


# ---------------------------------------------------------------- the control process


def serve(commands: type | None = None, prefix: str = ANSWER) -> None:
    """A control process's loop (Django is set up by the caller, see :data:`BOOT`): one JSON request per
    line on stdin, one answer per line on stdout after ``prefix``. ``commands``: the class whose static
    methods may be called (default :class:`Commands`; the fan-out benchmark brings its own)."""
    commands = commands or Commands
    known = {name: getattr(commands, name) for name in commands.__dict__ if not name.startswith("_")}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"result": known[request.pop("command")](**request)}
        except Exception as exc:  # report to the caller, keep serving
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(prefix + json.dumps(answer) + "\n")
        sys.stdout.flush()


def signed_in_data(membership: Membership, signed_in_at: int) -> dict:
    """A session's data as the sign-in view leaves it (user, backend, auth hash, sign-in time, handle),
    at the membership's site."""
    user = membership.user
    return {SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
            HASH_SESSION_KEY: user.get_session_auth_hash(), SIGNED_IN_AT: signed_in_at,
            HANDLE: secrets.token_hex(8), SITE_KEY: membership.site_id}


def _session_for(membership: Membership, signed_in_hours_ago: float = 0) -> str:
    """A signed-in session as the sign-in view leaves it, at the membership's site."""
    store = SessionStore()
    store.update(signed_in_data(membership, int(time.time() - signed_in_hours_ago * 3600)))
    store.save()
    return store.session_key


def _person(site: Site, name: str, role: str, email: str | None = None) -> Membership:
    return create_person(actor=None, site=site, data={
        "email": email or f"{name}-{site.pk}@stream.example", "full_name": name.title(), "role": role})


def _with_hub(hub_on: bool, action):
    """Run ``action``; ``hub_on=False``: commit without telling any server (as if Redis were down)."""
    saved = settings.REDIS_URL
    if not hub_on:
        settings.REDIS_URL = ""  # the frame goes to this process's own hub, which no server listens to
    try:
        result = action()
        hub.flush()
        return result
    finally:
        settings.REDIS_URL = saved


def _last(site: int) -> int:
    return StreamEvent.objects.for_site(site).order_by("-seq").values_list("seq", flat=True).first() or 0


class Commands:
    """What a test may ask the control process to do (through the real actions)."""

    @staticmethod
    def world(channels=("inapp",)) -> dict:
        org = tenant_actions.create_organization(name="Stream Org")
        other_org = tenant_actions.create_organization(name="Other Org")
        for each in (org, other_org):
            OrganizationSecurity.objects.create(organization=each,
                                                second_factor=OrganizationSecurity.SecondFactor.OPTIONAL)
        one = tenant_actions.create_site(actor=None, organization=org, name="Stream One")
        two = tenant_actions.create_site(actor=None, organization=org, name="Stream Two")
        other = tenant_actions.create_site(actor=None, organization=other_org, name="Stream Other")
        people = {name: _person(one, name, role) for name, role in [
            ("lead", Role.LEAD), ("employee", Role.EMPLOYEE), ("guest", Role.GUEST), ("member", Role.MEMBER),
            ("leaver", Role.EMPLOYEE)]}
        _person(two, "leaver", Role.EMPLOYEE, email=people["leaver"].user.email)  # also works at site two
        people["other"] = _person(other, "other", Role.EMPLOYEE)
        scenario = fire_scenario(one, channels=channels, roles=(Role.LEAD, Role.MEMBER, Role.EMPLOYEE))
        _key, raw_key = create_api_key(actor=None, site=one, name="Fire panel", scenarios=[scenario])
        return {"sites": {"one": one.pk, "two": two.pk, "other": other.pk}, "scenario": scenario.pk,
                "api_key": raw_key,
                "people": {name: {"membership": m.pk, "session": _session_for(m)} for name, m in people.items()}}

    @staticmethod
    def trigger(scenario: int, hub_on: bool = True) -> dict:
        chosen = Scenario.objects.get(pk=scenario)
        alarm, _created = _with_hub(hub_on, lambda: alarm_actions.trigger_alarm(site=chosen.site, scenario=chosen))
        return {"alarm": alarm.pk, "seq": _last(alarm.site_id)}

    @staticmethod
    def counts(alarm: int) -> int:
        """The cockpit's counts of the alarm (an event for the crisis team only)."""
        found = Alarm.objects.get(pk=alarm)
        _with_hub(True, lambda: _atomic(alarm_actions.publish_counts, found))
        return _last(found.site_id)

    @staticmethod
    def marker(site: int) -> int:
        """An event for everyone at the site."""
        _with_hub(True, lambda: _atomic(events.append, site, "test.marker", {"note": "for everyone at the site"}))
        return _last(site)

    @staticmethod
    def burst(site: int, count: int, size: int) -> int:
        """``count`` events for everyone at the site, ``size`` random characters each (compression does not
        shrink them), in one transaction."""
        def append_all():
            for number in range(count):
                events.append(site, "test.burst", {"number": number, "text": secrets.token_urlsafe(size * 3 // 4)})
        _with_hub(True, lambda: _atomic(append_all))
        return _last(site)

    @staticmethod
    def stream(site: int, after: int) -> list[list]:
        return [list(row) for row in StreamEvent.objects.for_site(site).filter(seq__gt=after).order_by("seq")
                .values_list("seq", "type", "audience", "alarm_id")]

    @staticmethod
    def end_session(session: str) -> bool:
        """The session's row disappears without a word to the servers (another process, no shared hub):
        like an expiry, only the stream's periodic re-check notices it."""
        return SessionStore().exists(session) and SessionStore(session).delete() is None

    @staticmethod
    def deactivate(membership: int) -> bool:
        found = Membership.objects.select_related("site").get(pk=membership)
        return set_people_active(actor=None, site=found.site, memberships=[found], active=False) == 1

    @staticmethod
    def seen(alarm: int, membership: int) -> bool:
        return AlarmRecipient.objects.filter(alarm_id=alarm, membership_id=membership, seen_at__isnull=False).exists()

    @staticmethod
    def crowd(site: int, count: int, prefix: str) -> list[str]:
        """``count`` more employees at the site, each with an app token (as the phone app holds one)."""
        found = Site.objects.get(pk=site)
        return [apptokens.issue(user=m.user, site=found, name="Phone")[1]
                for m in add_people(found, count, prefix=prefix, phone=False)]

    @staticmethod
    def answers(alarm: int, answer: str) -> int:
        return AlarmRecipient.objects.filter(alarm_id=alarm, answer=answer).count()

    @staticmethod
    def evacuation(site: int) -> int:
        """An evacuation alarm at the site (a scenario that evacuates everyone); returns its id."""
        chosen = Site.objects.get(pk=site)
        scenario = fire_scenario(chosen, name=f"Evacuation {secrets.token_hex(3)}", evacuates="all")
        alarm, _created = _with_hub(True, lambda: alarm_actions.trigger_alarm(site=chosen, scenario=scenario))
        return alarm.pk

    @staticmethod
    def statuses(alarm: int) -> dict:
        return {str(m): s for m, s in PersonState.objects.filter(alarm_id=alarm).values_list("membership_id",
                                                                                          "status")}

    @staticmethod
    def session(membership: int, signed_in_hours_ago: float = 0) -> str:
        return _session_for(Membership.objects.select_related("user").get(pk=membership), signed_in_hours_ago)


def _atomic(function, *args):
    with transaction.atomic():
        return function(*args)
