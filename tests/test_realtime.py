"""The real-time stream against the real `rallypoint run`, with real WebSocket clients.

The module's server runs embedded (no Redis). Alarms are raised through its
JSON API, as a fire panel does, or — for events committed by another process,
such as a separate worker — through the real actions in a control process on
the same database. The two-process test runs two servers on PostgreSQL with Redis.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from websockets.exceptions import InvalidStatus

from rallypoint.lib.env import parse_database_url
from rallypoint.realtime import hub
from rallypoint.realtime.socket import origin_allowed
from tests.realtime_helpers import (
    SESSION_COOKIE,
    Control,
    StreamClient,
    control_env,
    post_form,
    sign_out,
    trigger_via_api,
)
from tests.server import free_port, fresh_database, insecure_context, run_server

#: An alarm raised in the server's process reaches its sockets at once; allow for a busy machine.
LIVE = 3.0
#: Events committed by another process are found by comparing with the database every 2 s.
DEADLINE = 6.0
ON_POSTGRES = os.environ.get("RP_DATABASE_URL", "").startswith("postgres")


class Stream:
    def __init__(self, server, control, world):
        self.server, self.control, self.world = server, control, world
        self.clients: list[StreamClient] = []

    def client(self, person: str, **options) -> StreamClient:
        session = options.pop("session", None) or self.world["people"][person]["session"]
        client = StreamClient(self.server, session, **options)
        self.clients.append(client)
        return client

    def raise_alarm(self) -> dict:
        """Through the server's JSON API."""
        return trigger_via_api(self.server, self.world["api_key"], self.world["scenario"])

    def raise_elsewhere(self, **options) -> dict:
        """Through the actions, in the control process: {"alarm": id, "seq": its event's number}."""
        return self.control.call("trigger", scenario=self.world["scenario"], **options)

    def site(self, name: str) -> int:
        return self.world["sites"][name]

    def membership(self, person: str) -> int:
        return self.world["people"][person]["membership"]


@pytest.fixture(scope="module")
def stream_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stream")
    settings = {"RP_DEMO": "false", "RP_WORKER_IN_PROCESS": "false"}
    with fresh_database() as database, run_server(tmp, settings, database_url=database or "") as server, \
            Control(control_env(server, database), tmp / "control.log") as control:
        yield Stream(server, control, control.call("world"))


@pytest.fixture
def stream(stream_server):
    yield stream_server
    for client in stream_server.clients:
        client.close()
    stream_server.clients.clear()


def eventually(check, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def next_of(client: StreamClient, kind: str, timeout: float = LIVE) -> dict:
    frame = client.recv(timeout)
    assert frame["type"] == kind, frame
    return frame


def test_an_alarm_reaches_its_recipients_live_in_sequence(stream):
    lead, employee = stream.client("lead"), stream.client("employee")
    assert lead.ready["site"] == stream.site("one") and lead.ready["complete"]
    first = stream.raise_alarm()
    raised = next_of(lead, "alarm.raised")
    assert raised["alarm"] == first["id"] and raised["seq"] > lead.ready["seq"]
    assert raised["data"]["alarm"]["scenario"] == "Fire" and raised["data"]["alarm"]["level"] == "Pre-alarm"
    assert next_of(employee, "alarm.raised") == raised  # the same frame for everyone
    second = stream.raise_alarm()
    assert next_of(lead, "alarm.raised")["alarm"] == second["id"]
    assert next_of(employee, "alarm.raised")["seq"] == raised["seq"] + 1

    employee.send({"type": "seen", "alarm": first["id"]})
    eventually(lambda: stream.control.call("seen", alarm=first["id"], membership=stream.membership("employee")),
               "the in-app receipt was not recorded")


def test_an_alarm_committed_by_another_process_arrives_within_seconds(stream):
    lead = stream.client("lead")
    elsewhere = stream.raise_elsewhere(hub_on=False)  # e.g. a separate worker: its hub reaches no server
    frame = next_of(lead, "alarm.raised", timeout=DEADLINE)
    assert (frame["alarm"], frame["seq"]) == (elsewhere["alarm"], elsewhere["seq"])


def test_reconnecting_with_the_last_number_replays_exactly_what_was_missed(stream):
    stream.client("guest")  # keeps the server's feed of site one open, so it may lag behind the database
    lead = stream.client("lead")
    stream.raise_alarm()
    seen_last = next_of(lead, "alarm.raised")["seq"]
    lead.close()
    # Missed while away: an alarm, the cockpit's counts, an event for everyone, another alarm.
    missed = stream.raise_elsewhere()
    stream.control.call("counts", alarm=missed["alarm"])
    stream.control.call("marker", site=stream.site("one"))
    stream.raise_alarm()
    expected = stream.control.call("stream", site=stream.site("one"), after=seen_last)
    assert [row[0] for row in expected] == list(range(seen_last + 1, seen_last + 5))

    back = stream.client("lead", last_seq=seen_last, site=stream.site("one"))
    assert [[f["seq"], f["type"], f["audience"], f["alarm"]] for f in back.replayed] == expected
    assert back.ready == {"type": "ready", "site": stream.site("one"), "seq": expected[-1][0], "complete": True}
    live = stream.raise_alarm()
    frame = next_of(back, "alarm.raised")
    assert (frame["alarm"], frame["seq"]) == (live["id"], expected[-1][0] + 1)  # no gap, no duplicate

    employee = stream.client("employee", last_seq=seen_last, site=stream.site("one"))
    assert [f["type"] for f in employee.replayed] == ["alarm.raised", "test.marker", "alarm.raised",
                                                        "alarm.raised"]  # not the cockpit's counts
    stranger = stream.client("lead", last_seq=10**9, site=stream.site("one"))  # a number from elsewhere
    assert stranger.replayed == [] and stranger.ready["complete"] is False


def test_each_person_receives_only_what_they_may_see(stream):
    lead, employee = stream.client("lead"), stream.client("employee")
    guest, other = stream.client("guest"), stream.client("other")  # not a recipient; another organisation
    assert other.ready["site"] == stream.site("other")
    alarm = stream.raise_alarm()
    raised = [next_of(lead, "alarm.raised"), next_of(employee, "alarm.raised")]
    assert [f["alarm"] for f in raised] == [alarm["id"]] * 2
    # The published event carries the recipients for the endpoints; no client ever sees that list.
    assert all(set(f) == {"seq", "site", "type", "audience", "alarm", "at", "data"} for f in raised)
    stream.control.call("counts", alarm=alarm["id"])
    assert next_of(lead, "alarm.counts", timeout=DEADLINE)["data"]["alarm_id"] == alarm["id"]
    stream.control.call("marker", site=stream.site("one"))
    stream.control.call("marker", site=stream.site("other"))
    assert next_of(lead, "test.marker", timeout=DEADLINE)["site"] == stream.site("one")
    assert next_of(employee, "test.marker")["site"] == stream.site("one")  # no counts in between
    assert next_of(guest, "test.marker")["site"] == stream.site("one")  # neither the alarm nor its counts
    assert next_of(other, "test.marker", timeout=DEADLINE)["site"] == stream.site("other")  # nothing of site one


def test_a_crowd_answering_through_the_server_at_once_is_all_recorded(stream):
    """150 phones accept the same alarm in the same instant, through the real server: each request runs in
    its own thread there. None gets a 500; on PostgreSQL they take turns for the process's pooled
    connections instead of opening one each (the server allows 100)."""
    tokens = stream.control.call("crowd", site=stream.site("one"), count=150, prefix="crowd")
    alarm = stream.raise_alarm()
    host, port = urllib.parse.urlsplit(stream.server.base_url).netloc.split(":")
    start = threading.Barrier(len(tokens))

    def accept(token: str) -> int:
        conn = http.client.HTTPSConnection(host, int(port), context=insecure_context(), timeout=60)
        conn.connect()  # the TLS handshake before the barrier: the requests themselves arrive together
        start.wait(timeout=60)
        conn.request("POST", f"/api/v1/alarms/{alarm['id']}/answer", body=json.dumps({"answer": "accepted"}),
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status

    with ThreadPoolExecutor(len(tokens)) as phones:
        statuses = list(phones.map(accept, tokens, timeout=120))
    assert statuses == [200] * 150
    assert stream.control.call("answers", alarm=alarm["id"], answer="accepted") == 150


def test_a_slow_client_is_dropped_without_holding_up_the_others(stream):
    fast = stream.client("lead")
    slow = stream.client("employee", slow=True)
    last = stream.control.call("burst", site=stream.site("one"), count=2000, size=4000)  # 8 MB of events
    numbers = []
    while len(numbers) < 2000:
        frame = fast.recv(DEADLINE)
        assert frame["type"] == "test.burst"
        numbers.append(frame["data"]["number"])
    assert numbers == list(range(2000)) and frame["seq"] == last
    code, reason, frames = slow.closed_with(DEADLINE)
    assert (code, reason) == (4008, "too_slow") and len(frames) < 2000  # it reconnects and replays


def test_the_handshake_refuses_foreign_pages_and_anyone_not_signed_in(stream):
    too_old = stream.control.call("session", membership=stream.membership("lead"), signed_in_hours_ago=12.1)
    for options in ({"origin": "https://evil.example"}, {"origin": "null"}, {"session": "not-a-session-key"},
                    {"session": too_old}):  # past the absolute session lifetime (12 h), however active
        with pytest.raises(InvalidStatus) as refused:
            stream.client("lead", **options)
        assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        StreamClient(stream.server, None)
    assert refused.value.response.status_code == 403


def test_the_origin_must_be_the_sites_own_or_a_trusted_one(settings):
    settings.BASE_URL = "https://alarm.example.org"
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.corp.example", "https://panel.example.net:8443"]
    allowed = ["https://alarm.example.org", "https://ALARM.example.org:443", "https://hq.corp.example",
               "https://panel.example.net:8443", "https://rallypoint.local:8443"]
    refused = ["http://alarm.example.org", "https://alarm.example.org.evil.example", "https://corp.example.evil",
               "https://panel.example.net", "null", "", "https://evil.example"]
    assert [o for o in allowed if not origin_allowed(o, "https://rallypoint.local:8443")] == []
    assert [o for o in refused if origin_allowed(o, "https://rallypoint.local:8443")] == []


def test_the_first_message_must_be_hello_and_a_ping_gets_a_pong(stream):
    wrong = stream.client("lead", hello={"type": "ping"})
    assert wrong.closed_with(LIVE)[:2] == (4000, "protocol_error")
    lead = stream.client("lead")
    lead.send({"type": "ping"})
    assert lead.recv(LIVE, quiet=False) == {"type": "pong"}


def test_the_server_log_names_no_client_address(stream):
    stream.client("lead").close()
    with pytest.raises(InvalidStatus):
        stream.client("lead", origin="https://evil.example")
    handshakes = [line for line in stream.server.output().splitlines() if "WebSocket /ws/stream" in line]
    assert handshakes and not [line for line in handshakes if "127.0.0.1" in line]


def test_signing_out_closes_the_socket_and_nothing_more_arrives(stream):
    session = stream.control.call("session", membership=stream.membership("member"))
    member = stream.client("member", session=session)
    assert sign_out(stream.server, session) == 302
    code, reason, frames = member.closed_with(DEADLINE)
    assert (code, reason, frames) == (4001, "signed_out", [])
    with pytest.raises(InvalidStatus):
        stream.client("member", session=session)


def test_an_alarm_raised_just_after_sign_out_does_not_reach_the_signed_out_socket(stream):
    """Signing out closes the session's sockets through an event, at once: not at the next re-check (up to
    two seconds later), when an alarm raised meanwhile had already reached the signed-out device."""
    for _ in range(3):
        session = stream.control.call("session", membership=stream.membership("member"))
        member = stream.client("member", session=session)
        assert sign_out(stream.server, session) == 302
        stream.raise_alarm()
        assert member.closed_with(DEADLINE) == (4001, "signed_out", [])


def test_choosing_another_site_closes_the_old_sessions_socket_for_a_reconnect_not_as_signed_out(stream):
    session = stream.control.call("session", membership=stream.membership("employee"))
    employee = stream.client("employee", session=session)
    # Choosing a site (here: the same one) gives the session a new key; the old key's socket reconnects.
    assert post_form(stream.server, session, "/site/switch/", {"site": stream.site("one")}) == 302
    code, reason, _frames = employee.closed_with(DEADLINE)
    assert (code, reason) == (4009, "changed")


@pytest.mark.parametrize("last_seq", [-1, 1.5, "5", True, 2**64, {"n": 1}])
def test_a_hello_with_an_unreadable_number_is_refused(stream, last_seq):
    """Taking it for a fresh start would answer ``complete: true`` and replay nothing: a faulty client would
    never learn that it missed events."""
    client = stream.client("lead", hello={"type": "hello", "last_seq": last_seq, "site": stream.site("one")})
    assert client.closed_with(LIVE)[:2] == (4000, "protocol_error")
    bad_site = stream.client("lead", hello={"type": "hello", "last_seq": 1, "site": "one"})
    assert bad_site.closed_with(LIVE)[:2] == (4000, "protocol_error")


def reply_to(client, ref: str) -> dict:
    while True:
        frame = client.recv(LIVE)
        if frame.get("ref") == ref:
            return frame


def test_an_answer_over_the_socket_is_recorded_and_acknowledged(stream):
    employee, guest = stream.client("employee"), stream.client("guest")
    alarm = stream.raise_alarm()
    employee.send({"type": "answer", "ref": "a1", "alarm": alarm["id"], "answer": "accepted"})
    assert reply_to(employee, "a1") == {"type": "ack", "ref": "a1", "alarm": alarm["id"], "answer": "accepted"}
    assert stream.control.call("answers", alarm=alarm["id"], answer="accepted") >= 1
    guest.send({"type": "answer", "ref": "g1", "alarm": alarm["id"], "answer": "accepted"})  # not asked
    assert reply_to(guest, "g1") == {"type": "refused", "ref": "g1", "reason": "forbidden"}
    employee.send({"type": "answer", "ref": "a2", "alarm": alarm["id"], "answer": "maybe"})
    assert reply_to(employee, "a2")["reason"] == "invalid"
    employee.send({"type": "answer", "ref": "a3", "alarm": 10**30, "answer": "accepted"})
    assert reply_to(employee, "a3")["reason"] == "not_found"


def test_a_status_report_over_the_socket_is_recorded(stream):
    alarm = stream.control.call("evacuation", site=stream.site("one"))
    employee, lead = stream.client("employee"), stream.client("lead")
    employee.send({"type": "status", "ref": "s1", "alarm": alarm, "status": "safe"})
    assert reply_to(employee, "s1")["type"] == "ack"
    employee.send({"type": "status", "ref": "s2", "alarm": alarm, "status": "safe",
                   "person": stream.membership("guest")})  # not hers to report
    assert reply_to(employee, "s2")["reason"] == "forbidden"
    lead.send({"type": "status", "ref": "l1", "alarm": alarm, "status": "need_help",
               "person": stream.membership("guest"), "key": "lead-phone-1"})  # the roll call may
    assert reply_to(lead, "l1")["type"] == "ack"
    assert stream.control.call("statuses", alarm=alarm) == {str(stream.membership("employee")): "safe",
                                                            str(stream.membership("guest")): "need_help"}


def test_a_receipt_for_an_impossible_alarm_number_is_ignored_without_a_traceback(stream):
    lead = stream.client("lead")
    for alarm in (10**30, -5, 2**63):
        lead.send({"type": "seen", "alarm": alarm})
    lead.send({"type": "ping"})  # answered after the receipts were handled (messages are read in order)
    assert lead.recv(LIVE, quiet=False) == {"type": "pong"}
    assert "Traceback" not in stream.server.output()


def test_a_session_ended_elsewhere_during_a_run_of_alarms_still_closes_the_socket_within_seconds(stream):
    """The session re-check lets an alarm's fan-out go first, by up to a second per round and no more:
    alarms raised every few tenths of a second must not keep the socket of a session that ended where no
    event told the server (an expiry, another process without a shared hub) open."""
    session = stream.control.call("session", membership=stream.membership("member"))
    member = stream.client("member", session=session)
    stop = threading.Event()
    raised = []

    def keep_raising():
        while not stop.is_set():
            raised.append(stream.raise_alarm()["id"])
            stop.wait(0.3)

    raiser = threading.Thread(target=keep_raising)
    raiser.start()
    try:
        eventually(lambda: len(raised) >= 2, "alarms are being raised")
        assert stream.control.call("end_session", session=session)
        ended, at_end = time.monotonic(), len(raised)
        eventually(lambda: len(raised) >= at_end + 2, "the alarms go on after the session ended")
        code, reason, frames = member.closed_with(max(0.1, DEADLINE - (time.monotonic() - ended)))
        assert (code, reason) == (4001, "signed_out")
        assert frames  # the alarms reached the socket meanwhile
    finally:
        stop.set()
        raiser.join()


def test_deactivating_the_membership_closes_the_socket(stream):
    leaver = stream.client("leaver")
    assert stream.control.call("deactivate", membership=stream.membership("leaver"))
    assert leaver.closed_with(DEADLINE) == (4003, "no_access", [])
    with pytest.raises(InvalidStatus):
        stream.client("leaver")  # the session still exists (site two), but site one is closed to them


RECORD_STREAM = """
window.rpFrames = [];
for (const type of ["ready", "alarm.raised", "test.marker"]) {
  document.addEventListener("rp:" + type, (event) => window.rpFrames.push(event.detail));
}
"""


@pytest.mark.browser
def test_the_browser_client_dispatches_events_and_replays_after_leaving_the_page(stream, browser):
    context = browser.new_context(base_url=stream.server.base_url, ignore_https_errors=True)
    context.add_cookies([{"name": SESSION_COOKIE, "value": stream.world["people"]["employee"]["session"],
                          "url": stream.server.base_url, "secure": True, "httpOnly": True, "sameSite": "Lax"}])
    context.add_init_script(RECORD_STREAM)  # listens before the page's own scripts run
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def frames_until(check) -> list[dict]:
        deadline = time.monotonic() + DEADLINE
        while not check(frames := page.evaluate("() => window.rpFrames")):
            assert time.monotonic() < deadline, frames
            time.sleep(0.05)
        return frames

    def frames_after_opening() -> list[dict]:
        page.goto("/accounts/profile/")  # every page of a signed-in person carries the stream
        return frames_until(lambda frames: any(f["type"] == "ready" for f in frames))

    try:
        assert frames_after_opening()[-1]["complete"] is True
        alarm = stream.raise_alarm()
        frames_until(lambda frames: any(f["type"] == "alarm.raised" and f["alarm"] == alarm["id"] for f in frames))
        page.evaluate("(id) => window.RallypointStream.seen(id)", alarm["id"])
        page.goto("about:blank")  # away: what happens now is replayed when a page opens the stream again
        marker = stream.control.call("marker", site=stream.site("one"))
        later = stream.raise_alarm()
        frames = frames_after_opening()
        assert [(f["type"], f["seq"]) for f in frames] == [
            ("test.marker", marker), ("alarm.raised", marker + 1), ("ready", marker + 1)]
        assert frames[1]["alarm"] == later["id"]
        eventually(lambda: stream.control.call("seen", alarm=alarm["id"], membership=stream.membership("employee")),
                   "the in-app receipt was not recorded")
        assert not [e for e in errors if "Content Security Policy" in e or "WebSocket" in e or "stream.js" in e]
    finally:
        context.close()


@pytest.mark.skipif(not ON_POSTGRES, reason="two processes on one database need PostgreSQL "
                                            "(runs when the suite runs with RP_DATABASE_URL=postgresql://…)")
def test_two_processes_with_redis_act_as_one_system(tmp_path):
    shared = {"RP_REDIS_URL": "redis://127.0.0.1:6379/5", "RP_SECRET_KEY": "stream-test-" + "k" * 40,
              "RP_KEYRING_FILE": str(tmp_path / "keyring.json")}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with fresh_database() as database, \
            run_server(tmp_path / "a", shared, database_url=database) as a, \
            run_server(tmp_path / "b", {**shared, "RP_DEMO": "false", "RP_WORKER_IN_PROCESS": "false"},
                       database_url=database) as b, \
            Control(control_env(a, database, **shared), tmp_path / "control.log") as control:
        stream = Stream(b, control, control.call("world"))
        on_b = stream.client("lead")
        on_a = StreamClient(a, stream.world["people"]["employee"]["session"])
        try:
            # One subscription per process (A's worker and sockets share one), both on this database's channel.
            channel = hub.channel_for(parse_database_url(database, base_dir=Path.cwd()))
            with redis.Redis.from_url(shared["RP_REDIS_URL"]) as client:
                assert client.pubsub_numsub(channel) == [(channel.encode(), 2)]
            # Raised through process A's API: the socket on B has it at once (B compares with the database
            # only every 30 s while its Redis subscription is up).
            alarm = trigger_via_api(a, stream.world["api_key"], stream.world["scenario"])
            assert next_of(on_b, "alarm.raised")["alarm"] == alarm["id"]
            assert next_of(on_a, "alarm.raised")["alarm"] == alarm["id"]
            # Committed but never published (its process had no Redis): the next event through A shows B
            # the gap, and B reads the missing one from the database — in order, nothing twice.
            quiet = stream.raise_elsewhere(hub_on=False)
            after = trigger_via_api(a, stream.world["api_key"], stream.world["scenario"])
            frames = [next_of(on_b, "alarm.raised"), next_of(on_b, "alarm.raised")]
            assert [(f["alarm"], f["seq"]) for f in frames] == [(quiet["alarm"], quiet["seq"]),
                                                                (after["id"], quiet["seq"] + 1)]
        finally:
            on_a.close()
            for client in stream.clients:
                client.close()


def test_with_redis_down_an_event_still_reaches_this_process_and_the_action_goes_on(settings, caplog):
    received: list[dict] = []
    unsubscribe = hub.subscribe(received.append)  # embedded: no subscription to Redis
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/5"  # nothing listens there
    try:
        frame = {"seq": 1, "site": 1, "type": "alarm.raised", "audience": "alarm", "alarm": 1,
                 "data": {"note": "Namezq at +49 170 5550199"}}
        hub.publish(frame)  # returns at once and raises nothing
        deadline = time.monotonic() + DEADLINE
        while not received:
            assert time.monotonic() < deadline, "the event did not reach this process's subscribers"
            time.sleep(0.05)
    finally:
        unsubscribe()
    assert received == [frame]
    assert "Redis unreachable" in caplog.text
    assert "Namezq" not in caplog.text and "5550199" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_streams_database_threads_keep_their_sqlite_connection():
    """Each handshake and re-check runs in one of the stream's database threads. On SQLite each thread keeps
    one connection (opening one per call was a fifth of a handshake's time); on PostgreSQL it goes back to
    the pool after every call, so that idle stream threads hold none of the pool's connections."""
    import asyncio

    from django.db import connection

    from rallypoint.realtime.socket import run_db

    def which() -> tuple[int, bool]:
        fresh = connection.connection is None
        connection.ensure_connection()
        return threading.get_ident(), fresh

    async def calls() -> list[tuple[int, bool]]:
        return [await run_db(which) for _ in range(12)]

    results = asyncio.run(calls())
    opened: dict[int, int] = {}  # per thread: calls that found no connection and opened one
    for thread, fresh in results:
        opened[thread] = opened.get(thread, 0) + fresh
    if connection.vendor == "sqlite":
        assert len(results) > len(opened) and all(n <= 1 for n in opened.values()), opened
    else:
        assert sum(opened.values()) == len(results)
