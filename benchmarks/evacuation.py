"""Benchmark ``evacuation``: everyone reports at once, the roll call marks, the cockpit follows live.

    .venv/bin/python benchmarks/evacuation.py [--people 10000] [--seconds 60] [--database-url postgresql://…]

Set-up (``evacuation_setup.py``): a site with N people present in 40 zones that evacuate to 8 assembly
points, each with an app token; 200 roll-call leads and 50 cockpit viewers signed in; an evacuation alarm
raised. The real ``rallypoint run`` (plain HTTP, its worker in the process, so that the counts' sweep runs).
Load (``evacuation_clients.py``, another process): the 200 leads' and 50 viewers' stream sockets open;
then every person's status arrives over ``--seconds`` through the API over 16 kept-alive connections: half
as the person's own report, half as the leads' roll-call marks in batches of 25.

Figures: reports accepted per second and errors; from a report's request to the roll-call leads seeing the
person's new status live (p50/p99), and to the cockpit's counts including it (p50/p99); the missing list
and the counts at N people (before and after), on the benchmark's own database. Baseline in the same run:
one plain INSERT per report, each in its own transaction, on the same database.

Targets (issue 13): every report accepted with no error; cockpit p99 under 1 s; the missing list under
200 ms at 10,000 people. The last line is the JSON of everything.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from fanout import PYTHON, BenchmarkError, Lines, percentile, product_env, settle, start_product  # noqa: E402

from tests.server import free_port, fresh_database  # noqa: E402


class Control(Lines):
    def __init__(self, env: dict[str, str], log: Path):
        super().__init__("control process", [PYTHON, str(HERE / "evacuation_setup.py")], env, log, stdin=True)

    def call(self, command: str, timeout: float = 900, **args):
        self.process.stdin.write(json.dumps({"command": command, **args}) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.wait_for("@@evac ", timeout)[len("@@evac "):])
        if "error" in answer:
            raise BenchmarkError(f"control command {command} failed: {answer['error']}")
        return answer["result"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except Exception:  # noqa: BLE001
                pass
        super().stop()


def latencies(result: dict) -> dict:
    sent = {int(k): v for k, v in result["sent"].items()}
    accepted = {int(k): v for k, v in result["accepted"].items()}
    seen = {int(k): v for k, v in result["seen_by_lead"].items()}
    lead = [(seen[m] - sent[m]) * 1000 for m in accepted if m in seen]
    # The cockpit: the first counts event whose "accounted" reached the report's place in the order in which
    # the reports were accepted.
    order = sorted(accepted.items(), key=lambda item: item[1])
    counts = sorted(result["counts_seen"])
    cockpit, c = [], 0
    for rank, (member, _done) in enumerate(order, start=1):
        while c < len(counts) and counts[c][1] < rank:
            c += 1
        if c < len(counts):
            cockpit.append((counts[c][0] - sent[member]) * 1000)
    span = max(accepted.values()) - min(sent.values()) if accepted else 0.0
    return {"reports": len(sent), "accepted": len(accepted), "errors": result["errors"],
            "accepted_per_s": round(len(accepted) / span, 1) if span else 0.0,
            "lead_seen": len(lead), "lead_p50_ms": round(percentile(lead, 0.5), 1) if lead else None,
            "lead_p99_ms": round(percentile(lead, 0.99), 1) if lead else None,
            "cockpit_counted": len(cockpit),
            "cockpit_p50_ms": round(percentile(cockpit, 0.5), 1) if cockpit else None,
            "cockpit_p99_ms": round(percentile(cockpit, 0.99), 1) if cockpit else None}


def run(args, tmp: Path, database: str | None) -> dict:
    port = free_port()
    data = tmp / "data"
    env = product_env(data, port, database)
    env["RP_WORKER_IN_PROCESS"] = "true"  # the worker's sweep publishes the counts the web process left
    with ExitStack() as stack:
        control = Control(env, tmp / "control.log")
        stack.callback(control.stop)
        control.call("migrate")
        world = control.call("world", people=args.people, zones=40, points=8, leads=200, cockpits=50,
                             out_dir=str(tmp))
        before = control.call("missing_time", alarm=world["alarm"])
        baseline = control.call("bare_inserts", count=args.people)
        server = start_product(env, tmp, port, [], None)
        stack.callback(server.stop)
        settle([server.process.pid])
        clients = Lines("clients", [PYTHON, str(HERE / "evacuation_clients.py"),
                                    "--url", f"ws://127.0.0.1:{port}/ws/stream",
                                    "--origin", f"http://127.0.0.1:{port}", "--http", f"127.0.0.1:{port}",
                                    "--people", world["people"], "--leads", world["leads"],
                                    "--cockpits", world["cockpits"], "--alarm", str(world["alarm"]),
                                    "--seconds", str(args.seconds)], env, tmp / "clients.log")
        stack.callback(clients.stop)
        clients.wait_for("ready", timeout=300)
        result = json.loads(clients.wait_for("result ", timeout=args.seconds * 20 + 300)[len("result "):])
        after = control.call("missing_time", alarm=world["alarm"])
        stored = control.call("states", alarm=world["alarm"])
    figures = latencies(result)
    return {**figures, "states_stored": stored["states"], "missing_before": before, "missing_after": after,
            "bare_insert": baseline}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="evac-", dir="/tmp"))
    try:
        with fresh_database(args.database_url) as database:
            figures = run(args, tmp, database)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    base = figures["bare_insert"]
    print(f"reports accepted: {figures['accepted']} of {figures['reports']}, errors {figures['errors']}, "
          f"{figures['accepted_per_s']} per second (bare INSERT: {base['per_s']:.0f} per second)")
    print(f"report → roll-call leads see it: p50 {figures['lead_p50_ms']} ms, p99 {figures['lead_p99_ms']} ms "
          f"({figures['lead_seen']} seen)")
    print(f"report → cockpit counts include it: p50 {figures['cockpit_p50_ms']} ms, p99 {figures['cockpit_p99_ms']} "
          f"ms (target p99 < 1000 ms)")
    print(f"missing list at {args.people} people: {figures['missing_before']['missing_ms']:.1f} ms with "
          f"{figures['missing_before']['missing']} missing, {figures['missing_after']['missing_ms']:.1f} ms with "
          f"{figures['missing_after']['missing']} missing (target < 200 ms); counts "
          f"{figures['missing_before']['counts_ms']:.1f} / {figures['missing_after']['counts_ms']:.1f} ms")
    print(json.dumps({"benchmark": "evacuation", "database": "postgresql" if args.database_url else "sqlite",
                      "people": args.people, "seconds": args.seconds, **figures}))


if __name__ == "__main__":
    main()
