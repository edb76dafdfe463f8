"""The clients of the ``evacuation`` benchmark (a separate process, asyncio).

They open the stream sockets of the roll-call leads and cockpit viewers, then send the load: every person's
status report, spread evenly over ``--seconds``, half of them as the person's own report
(``POST /api/v1/alarms/{id}/status`` with their app token) and half as roll-call marks of the leads
(``POST /api/v1/alarms/{id}/statuses``, ``--batch`` marks a request), over ``--connections`` kept-alive HTTP
connections. Each report notes when it was sent and when it was accepted; the leads' sockets note when each
person's new status arrived live (``evacuation.statuses``), the cockpit's when the counts showed how many
were accounted for (``evacuation.counts``). Prints one JSON line of raw times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout_clients import Http, raise_file_limit  # noqa: E402


class Load:
    def __init__(self, args):
        self.args = args
        self.people = [line.split("\t") for line in Path(args.people).read_text().splitlines()]
        self.leads = [line.split("\t") for line in Path(args.leads).read_text().splitlines()]
        self.cockpits = [line.split("\t")[0] for line in Path(args.cockpits).read_text().splitlines()]
        self.sent: dict[int, float] = {}
        self.accepted: dict[int, float] = {}
        self.errors: dict[str, int] = {}
        self.seen_by_lead: dict[int, float] = {}
        self.counts_seen: list[tuple[float, int]] = []  # (time, accounted) as the cockpit saw it

    async def socket(self, session: str, cockpit: bool) -> None:
        ws = await connect(self.args.url, origin=self.args.origin, compression=None, ping_interval=None,
                           additional_headers={"Cookie": f"rp_session={session}"}, open_timeout=60, max_size=2**22)
        await ws.send(json.dumps({"type": "hello", "last_seq": None}))
        self.ready += 1
        async for message in ws:
            at = time.time()
            if cockpit and "evacuation.counts" in message:
                frame = json.loads(message)
                self.counts_seen.append((at, frame["data"]["counts"]["accounted"]))
            elif not cockpit and "evacuation.statuses" in message:
                for change in json.loads(message)["data"]["changes"]:
                    self.seen_by_lead.setdefault(change["membership"], at)

    async def send(self, http: Http, jobs: asyncio.Queue) -> None:
        while True:
            job = await jobs.get()
            kind, path, body, token, members = job
            sent = time.time()
            for m in members:
                self.sent[m] = sent
            try:
                status = await http.post(path, body, {"Authorization": f"Bearer {token}"})
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                status = type(exc).__name__
            if status == 200:
                done = time.time()
                for m in members:
                    self.accepted[m] = done
            else:
                self.errors[str(status)] = self.errors.get(str(status), 0) + len(members)
            jobs.task_done()

    def jobs(self) -> list[tuple[float, tuple]]:
        """(when, job): own reports of the first half, the leads' marks (in batches) of the second."""
        alarm, half = self.args.alarm, len(self.people) // 2
        spacing = self.args.seconds / max(1, len(self.people))
        plan = []
        for i, (member, token, point) in enumerate(self.people[:half]):
            plan.append((2 * i * spacing, ("own", f"/api/v1/alarms/{alarm}/status",
                                           {"status": "safe", "assembly_point_id": int(point)}, token, [int(member)])))
        marks = self.people[half:]
        for b in range(0, len(marks), self.args.batch):
            batch = marks[b:b + self.args.batch]
            lead = self.leads[(b // self.args.batch) % len(self.leads)]
            reports = [{"status": "safe", "membership_id": int(m), "assembly_point_id": int(p),
                        "client_key": f"mark-{m}"} for m, _t, p in batch]
            plan.append(((2 * b + 1) * spacing, ("mark", f"/api/v1/alarms/{alarm}/statuses", {"reports": reports},
                                                 lead[2], [int(m) for m, _t, _p in batch])))
        return sorted(plan, key=lambda item: item[0])

    async def run(self) -> dict:
        self.ready = 0
        sockets = [asyncio.create_task(self.socket(s, False)) for _m, s, _t in self.leads]
        sockets += [asyncio.create_task(self.socket(s, True)) for s in self.cockpits]
        while self.ready < len(sockets):
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # every socket has had its "ready"
        print("ready", flush=True)
        host, port = self.args.http.rsplit(":", 1)
        queue: asyncio.Queue = asyncio.Queue()
        senders = [asyncio.create_task(self.send(Http(host, int(port)), queue)) for _ in range(self.args.connections)]
        started = time.time()
        for when, job in self.jobs():
            delay = started + when - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(job)
        await queue.join()
        finished = time.time()
        await asyncio.sleep(self.args.linger)  # the last live events and counts
        for task in senders + sockets:
            task.cancel()
        return {"started": started, "finished": finished, "sent": self.sent, "accepted": self.accepted,
                "errors": self.errors, "seen_by_lead": self.seen_by_lead, "counts_seen": self.counts_seen}


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("url", "origin", "http", "people", "leads", "cockpits"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--alarm", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--linger", type=float, default=5.0)
    args = parser.parse_args()
    raise_file_limit()
    result = asyncio.run(Load(args).run())
    print("result " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
