"""The client side of the ``fanout`` benchmark: N WebSocket clients in one asyncio process.

Started by ``benchmarks/fanout.py``; not meant to be run by hand. It opens N
sockets (at most ``--connect-concurrency`` handshakes at a time, each retried a
few times), sends each the hello and waits for ``ready``; then prints
``ready <connected> <failed>`` on stdout and waits for the alarm frame on every
socket, recording ``time.time()`` of its receipt (the parent records the time
just before it triggers: one machine, one clock). With ``--people`` (the product)
each client then accepts the alarm with its app token over one of
``--accept-concurrency`` kept-alive HTTP connections and records when the answer
came back. It taps "accept" ``--accept-after`` seconds after the alarm arrived (a
person reads it first): so while the alarm is being delivered, the product gets
the same client load as the bare server, and the receipt figures compare alike.
At the end it writes the figures to ``--results`` and prints ``done``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
from pathlib import Path

import websockets
from websockets.asyncio.client import ClientConnection, connect

CONNECT_TRIES = 5
ACCEPT_TRIES = 4


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Http:
    """One kept-alive HTTP/1.1 connection, just enough to POST JSON and read the answer."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, body: dict, headers: dict[str, str]) -> int:
        data = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more on a new one
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                self.writer.write(head.encode("latin-1") + data)
                return await self._response()
            except (OSError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> int:
        status = int((await self.reader.readuntil(b"\r\n")).split()[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _sep, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = "close" in value
        if chunked:
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        else:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status


class Crowd:
    def __init__(self, args, people: list[tuple[str, str]]):
        self.args, self.people = args, people
        self.n = args.count
        self.sockets: list[ClientConnection | None] = [None] * self.n
        self.receipts: list[float | None] = [None] * self.n
        self.accepted: list[float | None] = [None] * self.n
        self.tapped: list[float | None] = [None] * self.n  # when the client "tapped accept" (first try)
        self.answer_tries = [0] * self.n
        self.accept_errors: dict[str, int] = {}
        self.frame = ""  # the alarm frame's text as received (the bare server is given the same to send)
        self.closed_early = 0
        self.heartbeats: list[float] = []  # when the first socket got a heartbeat (the server sends one to all)
        self.received = 0
        self.all_received = asyncio.Event()
        # this process's resource use at the first and the last receipt
        self.usage_at_first = self.usage_at_last = resource.getrusage(resource.RUSAGE_SELF)
        self.queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self.gate = asyncio.Semaphore(args.connect_concurrency)

    def receive_usage(self) -> dict:
        """CPU seconds (user, kernel) and context switches from the first receipt to the last."""
        first, last = self.usage_at_first, self.usage_at_last
        user, kernel = last.ru_utime - first.ru_utime, last.ru_stime - first.ru_stime
        return {"receive_cpu_s": user + kernel, "receive_user_s": user, "receive_kernel_s": kernel,
                "receive_switches": (last.ru_nvcsw - first.ru_nvcsw) + (last.ru_nivcsw - first.ru_nivcsw),
                "receive_page_faults": last.ru_minflt - first.ru_minflt}

    async def open_one(self, i: int) -> bool:
        headers = {"Cookie": f"{self.args.cookie_name}={self.people[i][0]}"} if self.people else {}
        for attempt in range(CONNECT_TRIES):
            async with self.gate:
                try:
                    ws = await connect(self.args.url, origin=self.args.origin, additional_headers=headers,
                                       compression=None, ping_interval=None, open_timeout=60, close_timeout=1,
                                       max_size=2**20)
                    await ws.send(json.dumps({"type": "hello", "last_seq": None}))
                    while json.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "ready":
                        pass
                    self.sockets[i] = ws
                    return True
                except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                    error = exc
            await asyncio.sleep(0.2 * 2 ** attempt)
        print(f"client {i} could not connect: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return False

    async def listen(self, i: int) -> None:
        ws = self.sockets[i]
        try:
            while True:
                # Nothing of a message outlives its handling: 10,000 sockets each holding on to their
                # last frame would grow this process by ~50 MB while it measures, and on this VM a page
                # touched for the first time costs from 1 to 10 µs (the host backs it only then), a
                # cost of the client that differed from run to run by more than the two servers did.
                self.receive(i, await ws.recv())
        except websockets.ConnectionClosed:
            pass
        if not self.all_received.is_set():
            self.closed_early += 1

    def receive(self, i: int, message: str) -> None:
        at = time.time()
        if '"ref"' in message:  # the answer to an answer sent over the socket
            self.socket_reply(i, json.loads(message), at)
            return
        if "alarm.raised" not in message:  # heartbeats, pongs
            if i == 0 and '"heartbeat"' in message:
                self.heartbeats.append(at)
            return
        frame = json.loads(message)
        if frame.get("type") != "alarm.raised" or self.receipts[i] is not None:
            return
        self.receipts[i] = at
        if not self.frame:
            self.frame = message
        # Each person taps at their own moment within --accept-spread seconds: N / spread answers a second.
        after = self.args.accept_after + self.args.accept_spread * i / self.n
        if self.people and self.args.accept and self.args.answer_via == "socket":
            asyncio.get_running_loop().call_later(after, self.answer_on_socket, i, frame["alarm"])
        elif self.people and self.args.accept:
            asyncio.get_running_loop().call_later(after, self.queue.put_nowait, (i, frame["alarm"]))
        self.received += 1
        if self.received == 1:
            self.usage_at_first = resource.getrusage(resource.RUSAGE_SELF)
        if self.received == self.n:
            self.usage_at_last = resource.getrusage(resource.RUSAGE_SELF)
            self.all_received.set()

    def answer_on_socket(self, i: int, alarm: int) -> None:
        """As the app does with its stream open: the answer goes over the socket (no request, no sign-in)."""
        if self.tapped[i] is None:
            self.tapped[i] = time.time()
            self.queue.put_nowait((i, alarm))  # done when acknowledged (or given up)
        self.answer_tries[i] += 1
        if self.args.answer_kind == "status":
            message = json.dumps({"type": "status", "ref": f"{alarm}", "alarm": alarm, "status": "safe",
                                  "key": f"bench-{alarm}-{i}"})
        else:
            message = json.dumps({"type": "answer", "ref": f"{alarm}", "alarm": alarm, "answer": "accepted"})
        asyncio.get_running_loop().create_task(self.sockets[i].send(message))

    def socket_reply(self, i: int, reply: dict, at: float) -> None:
        if reply.get("type") == "ack" and self.accepted[i] is None:
            self.accepted[i] = at
            self.queue.task_done()
            return
        if reply.get("type") == "refused":
            reason = str(reply.get("reason"))
            self.accept_errors[reason] = self.accept_errors.get(reason, 0) + 1
            if self.answer_tries[i] < ACCEPT_TRIES and reason in ("busy", "unavailable"):
                asyncio.get_running_loop().call_later(0.5 * 2 ** self.answer_tries[i], self.answer_on_socket, i,
                                                      int(reply["ref"]))
            else:
                self.queue.task_done()

    async def accept_worker(self, host: str, port: int) -> None:
        http = Http(host, port)
        while True:
            i, alarm = await self.queue.get()
            self.tapped[i] = time.time()
            for attempt in range(ACCEPT_TRIES):  # as the app does: a failed answer is sent again
                try:
                    if self.args.answer_kind == "status":
                        status = await http.post(f"/api/v1/alarms/{alarm}/status", {"status": "safe"},
                                                 {"Authorization": f"Bearer {self.people[i][1]}"})
                    else:
                        status = await http.post(f"/api/v1/alarms/{alarm}/answer", {"answer": "accepted"},
                                                 {"Authorization": f"Bearer {self.people[i][1]}"})
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status = type(exc).__name__
                if status == 200:
                    self.accepted[i] = time.time()
                    break
                self.accept_errors[str(status)] = self.accept_errors.get(str(status), 0) + 1
                await asyncio.sleep(0.5 * 2 ** attempt)
            self.queue.task_done()


async def run(args) -> dict:
    people = []
    if args.people:
        people = [tuple(line.split("\t")) for line in Path(args.people).read_text().splitlines()][: args.count]
        if len(people) < args.count:
            raise SystemExit(f"only {len(people)} people in {args.people}, {args.count} wanted")
    crowd = Crowd(args, people)
    started = time.monotonic()
    opened = await asyncio.gather(*(crowd.open_one(i) for i in range(crowd.n)))
    connected = sum(opened)
    connect_seconds = time.monotonic() - started
    # No collection of the tens of thousands of connection objects in the middle of a measurement.
    gc.collect()
    gc.freeze()
    gc.disable()
    listeners = [asyncio.create_task(crowd.listen(i)) for i in range(crowd.n) if opened[i]]
    await asyncio.sleep(0.5)  # every listener waits for its first message before the trigger is asked for
    print(f"ready {connected} {crowd.n - connected}", flush=True)
    if connected < crowd.n:
        return {"connected": connected, "connect_seconds": connect_seconds}
    workers = []
    if people and args.accept and args.answer_via == "api":
        host, port = args.http.rsplit(":", 1)
        workers = [asyncio.create_task(crowd.accept_worker(host, int(port))) for _ in range(args.accept_concurrency)]
    try:
        await asyncio.wait_for(crowd.all_received.wait(), args.receive_timeout)
    except TimeoutError:
        pass
    if people and args.accept:
        await asyncio.sleep(args.accept_after + args.accept_spread)  # every answer is in the queue after this
        try:
            await asyncio.wait_for(crowd.queue.join(), args.accept_timeout)
        except TimeoutError:
            pass
    for task in workers + listeners:
        task.cancel()
    return {"connected": connected, "connect_seconds": connect_seconds, "receipts": crowd.receipts,
            "accepted": crowd.accepted, "tapped": crowd.tapped, "accept_errors": crowd.accept_errors,
            "frame_bytes": len(crowd.frame.encode()),
            "frame": crowd.frame,
            "closed_early": crowd.closed_early, "heartbeats": crowd.heartbeats,
            # how busy the clients were between the first and the last receipt (CPU seconds)
            **crowd.receive_usage()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--people", help="TSV of session key and app token per person (the product)")
    parser.add_argument("--cookie-name", default="rp_session")
    parser.add_argument("--http", help="host:port for the acceptance POSTs")
    parser.add_argument("--accept", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--answer-via", choices=("socket", "api"), default="socket")
    parser.add_argument("--answer-kind", choices=("accept", "status"), default="accept")
    parser.add_argument("--accept-spread", type=float, default=0.0)
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--accept-concurrency", type=int, default=200)
    parser.add_argument("--accept-after", type=float, default=1.0)
    parser.add_argument("--receive-timeout", type=float, default=120)
    parser.add_argument("--accept-timeout", type=float, default=900)
    args = parser.parse_args()
    limit = raise_file_limit()
    if args.count + args.accept_concurrency + 50 > limit:
        raise SystemExit(f"{args.count} clients need more open files than the limit {limit}")
    results = asyncio.run(run(args))
    Path(args.results).write_text(json.dumps(results))
    print("done", flush=True)
    os._exit(0)  # the kernel closes the sockets at once; a closing handshake for each would take seconds


if __name__ == "__main__":
    main()
