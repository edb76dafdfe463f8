"""``rallypoint run`` with time marks on the stream's fan-out path, for ``fanout.py --trace``.

The product is not changed: this wrapper wraps a few of its functions before the
server starts and appends one JSON line per mark to the file named by
``FANOUT_TRACE``:

- ``publish``: the trigger's transaction has committed and its event goes to the hub;
- ``members`` / ``members_done``: the stream reads the alarm's recipients (once per alarm);
- ``offer`` / ``offer_done``: the event is put into the outbox of every local socket;
- ``sent``: per event, when the first and the last socket got the frame written, and how many;
- ``recheck``: each periodic re-check of all sockets' sessions (start and duration);
- ``gc``: each collection of the oldest generation (start and duration: it holds every thread).

The marks cost a few microseconds per socket; figures taken with them are marked as traced.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rallypoint.settings")

import django  # noqa: E402

django.setup()

from django.core.management import execute_from_command_line  # noqa: E402

from rallypoint.realtime import hub  # noqa: E402
from rallypoint.realtime import socket as stream  # noqa: E402

TRACE = Path(os.environ["FANOUT_TRACE"]).open("a", buffering=1)
SENT_REPORT_AFTER = 5.0  # seconds after an event's first send, its send figures are written


def mark(what: str, at: float | None = None, **facts) -> None:
    TRACE.write(json.dumps({"what": what, "at": time.time() if at is None else at, **facts}) + "\n")


def _wrap_publish():
    original = hub.publish

    def publish(frame: dict) -> None:
        mark("publish", site=frame.get("site"), type=frame.get("type"), seq=frame.get("seq"),
             alarm=frame.get("alarm"))
        original(frame)

    hub.publish = publish


def _wrap_fanout():
    members, offer, recheck = stream.Fanout.audience_members, stream.Fanout.offer, stream.Fanout._recheck

    async def audience_members(self, feed, frame):
        mark("members", site=feed.site_id, seq=frame.get("seq"))
        result = await members(self, feed, frame)
        mark("members_done", site=feed.site_id, seq=frame.get("seq"), count=None if result is None else len(result))
        return result

    def traced_offer(self, feed, frame, recipients):
        mark("offer", site=feed.site_id, seq=frame["seq"], type=frame.get("type"), sockets=len(feed.sockets))
        offer(self, feed, frame, recipients)
        mark("offer_done", site=feed.site_id, seq=frame["seq"])

    async def traced_recheck(self):
        started = time.time()
        await recheck(self)
        mark("recheck", at=started, seconds=time.time() - started, sockets=len(self.connections))

    stream.Fanout.audience_members = audience_members
    stream.Fanout.offer = traced_offer
    stream.Fanout._recheck = traced_recheck


def _wrap_sends():
    """A frame is written either by the socket's writer task (``send_text``) or at once by ``push``."""
    send_text, push = stream.Connection.send_text, stream.Connection.push
    sent: dict[str, list] = {}  # "type#site#seq" of an event → [first, last, count]

    def report(key: str) -> None:
        first, last, count = sent.pop(key)
        mark("sent", event=key, first=first, last=last, count=count)

    def note(text: str) -> None:
        if text.startswith('{"seq":'):  # an event frame: {"seq":N,"site":S,"type":"…",…}
            seq, site = text[7:text.index(",")], text[text.index('"site":') + 7:].split(",", 1)[0]
            kind = text[text.index('"type":'):].split('"', 4)[3]
            key = f"{kind}#{site}#{seq}"
            now = time.time()
            entry = sent.get(key)
            if entry is None:
                sent[key] = [now, now, 1]
                asyncio.get_running_loop().call_later(SENT_REPORT_AFTER, report, key)
            else:
                entry[1], entry[2] = now, entry[2] + 1

    async def traced_send_text(self, text: str) -> None:
        await send_text(self, text)
        note(text)

    def traced_push(self, text: str, data: bytes | None = None) -> bool:
        written = push(self, text, data)
        if written:
            note(text)
        return written

    stream.Connection.send_text = traced_send_text
    stream.Connection.push = traced_push


def _watch_gc():
    """Mark every garbage collection of the oldest generation and how long it held the process."""
    import gc

    started: dict[str, float] = {}

    def callback(phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            started["at"] = time.time()
        elif "at" in started:
            began = started.pop("at")
            mark("gc", at=began, seconds=round(time.time() - began, 4), collected=info.get("collected"),
                 tracked=len(gc.get_objects()))

    gc.callbacks.append(callback)


if __name__ == "__main__":
    _watch_gc()
    _wrap_publish()
    _wrap_fanout()
    _wrap_sends()
    execute_from_command_line(["rallypoint", "run"])
