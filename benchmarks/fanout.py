"""Benchmark ``fanout``: how fast an alarm reaches N connected WebSocket clients, against a bare broadcast server.

    .venv/bin/python benchmarks/fanout.py --clients 2000 10000 [--repeat 3] [--database-url postgresql://…]

Per N: a site with N employees, each signed in (a session) with an app token; a
scenario whose first level alerts all of them in the app only and asks for
acceptance; an API key for it. The real ``rallypoint run`` serves plain HTTP
(``RP_TLS=false``, no worker in the process: ``RP_WORKER_IN_PROCESS=false``) and
``benchmarks/bare_ws.py`` is the baseline: a bare ``websockets.broadcast`` server.
``benchmarks/fanout_clients.py`` opens the N sockets in a separate process; when
all are ready the alarm is triggered (product: ``POST /api/v1/alarms`` with the API
key; bare: ``GET /broadcast`` of a frame as long as the product's alarm frame).
Latency is from just before the trigger request to the receipt of the alarm frame
on each socket (``time.time()`` in both processes: one machine, one clock). For the
product every client then accepts (``POST /api/v1/alarms/{id}/answer`` with its app
token, at most 200 in flight on kept-alive connections); "last acceptance" is from
the trigger until the last answer came back, and the database must count N accepted.
By default the clients answer over their stream socket, as the alarm page does when its stream is up
(``--answer-via api``: the HTTP API). ``--answer-kind status``: the scenario evacuates the site, and each
client reports itself safe instead of accepting (the database must count N people safe).

Runs are interleaved (bare N₁, product N₁, … per repetition, for each N), each on a
quiet machine (the servers' CPU use is let settle first); the table shows the median
of the repetitions of each figure. The last line is the JSON of everything.
Nothing is kept: the servers are stopped and the data directory (and PostgreSQL
database) are removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from tests.server import free_port, fresh_database  # noqa: E402

PYTHON = sys.executable
COOKIE = "rp_session"  # the session cookie's name without TLS and proxy (settings.SESSION_COOKIE_NAME)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ACCEPT_TRIES = 4  # as in fanout_clients.py


class BenchmarkError(Exception):
    pass


# ---------------------------------------------------------------- processes


class Lines:
    """A child process whose stdout lines are read by a thread, so the parent can wait with a deadline."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path, stdin: bool = False,
                 capture: bool = True):
        """``capture=False``: stdout goes to the log as well (a server that logs there)."""
        self.name, self.log = name, log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(args, cwd=REPO, env=env, stderr=self._log_file,
                                        stdout=subprocess.PIPE if capture else self._log_file,
                                        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        if capture:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchmarkError(f"{self.name}: no '{prefix}' within {timeout:.0f} s{self.tail()}") from None
            if line is None:
                raise BenchmarkError(f"{self.name} ended (exit code {self.process.wait()}){self.tail()}")
            if line.startswith(prefix):
                return line

    def tail(self, lines: int = 30) -> str:
        self._log_file.flush()
        text = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        return ("\n--- " + str(self.log) + ":\n" + "\n".join(text)) if text else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                self.process.kill()
                self.process.wait()
        self._log_file.close()


class Control(Lines):
    """``benchmarks/fanout_setup.py``: Django on the benchmark's database."""

    def __init__(self, env: dict[str, str], log: Path):
        super().__init__("control process", [PYTHON, str(HERE / "fanout_setup.py")], env, log, stdin=True)

    def call(self, command: str, timeout: float = 600, **args):
        self.process.stdin.write(json.dumps({"command": command, **args}) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.wait_for("@@fanout ", timeout)[len("@@fanout "):])
        if "error" in answer:
            raise BenchmarkError(f"control command {command} failed: {answer['error']}")
        return answer["result"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()  # it ends at the end of its input
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        super().stop()


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
    return total / CLOCK_TICKS


def machine_cpu_seconds() -> float:
    """CPU time used by everything on the machine so far (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def settle(pids: list[int], timeout: float = 180.0) -> float:
    """Wait until our servers use less than 3 % of a core and the whole machine less than 10 % over a
    second, twice in a row (other work on the machine would distort the figures); returns the wait."""
    started = time.monotonic()
    quiet = 0
    while quiet < 2 and time.monotonic() - started < timeout:
        ours, machine = cpu_seconds(pids), machine_cpu_seconds()
        time.sleep(1.0)
        calm = cpu_seconds(pids) - ours < 0.03 and machine_cpu_seconds() - machine < 0.10
        quiet = quiet + 1 if calm else 0
    if quiet < 2:
        print(f"warning: the machine did not become quiet in {timeout:.0f} s; measuring anyway", file=sys.stderr)
    return time.monotonic() - started


def product_env(data_dir: Path, port: int, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RP_")}
    env.update(RP_DATA_DIR=str(data_dir), RP_PORT=str(port), RP_TLS="false", RP_REDIRECT_PORT="0",
               RP_BASE_URL=f"http://127.0.0.1:{port}", RP_DEMO="false", RP_WORKER_IN_PROCESS="false",
               # The benchmark's sessions must outlive a long run without a request in between.
               RP_SESSION_IDLE_MINUTES="720")
    if database_url:
        env["RP_DATABASE_URL"] = database_url
    return env


def start_product(env: dict[str, str], tmp: Path, port: int, wrapper: list[str], trace: Path | None) -> Lines:
    command = [PYTHON, str(HERE / "traced_server.py")] if trace else [PYTHON, "-m", "rallypoint", "run"]
    if trace:
        env = {**env, "FANOUT_TRACE": str(trace)}
    server = Lines("rallypoint run", [*wrapper, *command], env, tmp / "server.log", capture=False)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchmarkError(f"rallypoint run exited{server.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchmarkError(f"rallypoint run did not become ready{server.tail()}")


# ---------------------------------------------------------------- one run


def request(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json", **(headers or {})})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class Bench:
    def __init__(self, args, tmp: Path, control: Control, world: dict, product_port: int, bare_port: int,
                 pids: list[int]):
        self.args, self.tmp, self.control, self.world = args, tmp, control, world
        self.product_port, self.bare_port, self.pids = product_port, bare_port, pids
        self.runs = 0

    def clients(self, kind: str, n: int, site: int | None = None) -> tuple[Lines, Path]:
        """The client process for ``n`` sockets (of the people of the site made for ``site`` clients)."""
        self.runs += 1
        results = self.tmp / f"results-{self.runs}.json"
        port = self.product_port if kind == "product" else self.bare_port
        cmd = [PYTHON, str(HERE / "fanout_clients.py"), "--url", f"ws://127.0.0.1:{port}/ws/stream",
               "--origin", f"http://127.0.0.1:{port}", "--count", str(n), "--results", str(results),
               "--connect-concurrency", str(self.args.connect_concurrency),
               "--accept-concurrency", str(self.args.accept_concurrency),
               "--accept-timeout", str(self.args.accept_timeout), "--accept-after", str(self.args.accept_after),
               "--answer-via", self.args.answer_via, "--accept-spread", str(self.args.accept_spread),
               "--answer-kind", self.args.answer_kind]
        if kind == "product":
            cmd += ["--people", self.world[str(site or n)]["people"], "--cookie-name", COOKIE,
                    "--http", f"127.0.0.1:{port}", "--accept" if self.args.accept else "--no-accept"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RP_")}
        return Lines(f"clients ({kind}, N={n})", cmd, env, self.tmp / f"clients-{self.runs}.log"), results

    def profile(self, kind: str, n: int) -> subprocess.Popen | None:
        """With --profile: sample the product's server with py-spy from just before the trigger."""
        if kind != "product" or not self.args.profile:
            return None
        out = Path(self.args.profile) / f"product-{n}-{self.runs}.txt"
        process = subprocess.Popen([self.args.py_spy, "record", "--pid", str(self.pids[0]), "--format", "raw",
                                    "--threads", "--nonblocking", "--rate", "250", "--duration",
                                    str(self.args.profile_seconds), "--output", str(out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
        return process

    def trigger(self, kind: str, n: int, frame: str) -> int | None:
        if kind == "bare":
            query = (f"bytes={len(frame.encode())}" if self.args.bare_padding
                     else urllib.parse.urlencode({"frame": frame}))
            status, body = request(self.bare_port, "GET", f"/broadcast?{query}")
            if status != 200 or int(body) != n:
                raise BenchmarkError(f"bare broadcast: {status} {body[:200]!r}")
            return None
        site = self.world[str(n)]
        status, body = request(self.product_port, "POST", "/api/v1/alarms", {"scenario_id": site["scenario"]},
                               {"X-API-Key": site["api_key"]})
        if status != 201:
            raise BenchmarkError(f"trigger: {status} {body[:300]!r}")
        return json.loads(body)["id"]

    def run(self, kind: str, n: int, frame: str = "") -> dict:
        waited = settle(self.pids)
        clients, results_file = self.clients(kind, n)
        try:
            ready = clients.wait_for("ready", timeout=120 + n / 20).split()
            if int(ready[1]) < n:
                raise BenchmarkError(f"{kind}: only {ready[1]} of {n} clients connected{clients.tail()}")
            time.sleep(self.args.after_connect)  # clients are connected well before an alarm, not just now
            profiler = self.profile(kind, n)
            ours = [*self.pids, clients.process.pid, os.getpid(), *([profiler.pid] if profiler else [])]
            cpu_before = machine_cpu_seconds() - cpu_seconds(ours)
            t0 = time.time()
            alarm = self.trigger(kind, n, frame)
            answered = time.time()
            clients.wait_for("done", timeout=self.args.accept_timeout + 300)
            foreign = machine_cpu_seconds() - cpu_seconds(ours) - cpu_before
            clients.process.wait(timeout=60)
            if profiler is not None:
                profiler.wait(timeout=60)
        finally:
            clients.stop()
        results = json.loads(results_file.read_text())
        figures = self.figures(kind, n, t0, answered, results)
        # CPU seconds used by processes other than the benchmark's while it measured (should be ~0).
        figures["foreign_cpu_s"] = round(foreign, 2)
        figures["settled_s"] = round(waited, 1)
        if alarm is not None:
            figures.update(self.check_product(n, alarm, t0, figures.get("accepted", 0)))
            if self.args.trace:
                figures.update(trace_figures(self.tmp / "trace.jsonl", alarm, t0, t0 + figures["max_ms"] / 1000))
        beats = [b for b in results["heartbeats"] if t0 - 0.5 <= b <= t0 + figures["max_ms"] / 1000]
        figures["heartbeat_during"] = bool(beats)  # a heartbeat to every socket went out meanwhile
        return figures

    def figures(self, kind: str, n: int, t0: float, answered: float, results: dict) -> dict:
        receipts = [r for r in results["receipts"] if r is not None]
        if len(receipts) < n:
            raise BenchmarkError(f"{kind}: only {len(receipts)} of {n} clients received the alarm "
                                 f"({results['closed_early']} sockets closed early)")
        latencies = [(r - t0) * 1000 for r in receipts]
        out = {"kind": kind, "n": n, "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
               "max_ms": max(latencies), "min_ms": min(latencies), "trigger_answered_ms": (answered - t0) * 1000,
               "frame_bytes": results["frame_bytes"], "connect_s": results["connect_seconds"],
               # the clients' CPU use from their first receipt to their last: 1.0 means they were the limit
               "clients_busy": round(results["receive_cpu_s"] / max(1e-6, (max(receipts) - min(receipts))), 2),
               # the same CPU time per frame received, in the clients' own code and in the kernel (µs)
               "client_user_us": round(results["receive_user_s"] / max(1, len(receipts) - 1) * 1e6, 1),
               "client_kernel_us": round(results["receive_kernel_s"] / max(1, len(receipts) - 1) * 1e6, 1),
               "client_switches": results["receive_switches"],
               # pages the client process touched for the first time meanwhile (its memory grew)
               "client_page_faults": results["receive_page_faults"]}
        if kind == "product" and self.args.accept:
            accepted = [a for a in results["accepted"] if a is not None]
            out["accepted"] = len(accepted)
            out["accept_errors"] = results["accept_errors"]  # failed tries (sent again up to 4 times)
            out["failed_tries"] = sum(results["accept_errors"].values())
            if len(accepted) == n:
                out["last_accept_s"] = max(accepted) - t0
                out["accept_p50_s"] = percentile([a - t0 for a in accepted], 0.50)
                # from tapping "accept" to the answer recorded and acknowledged, and the rate of the crowd
                latencies = [(a - t) * 1000 for a, t in zip(results["accepted"], results["tapped"], strict=True)
                             if a is not None and t is not None]
                taps = [t for t in results["tapped"] if t is not None]
                out["answer_p50_ms"] = percentile(latencies, 0.50)
                out["answer_p99_ms"] = percentile(latencies, 0.99)
                out["answers_per_s"] = n / max(1e-3, max(accepted) - min(taps))
            else:  # not all within --accept-timeout, or some gave up after 4 tries: reported, not hidden
                print(f"warning: only {len(accepted)} of {n} acceptances succeeded in time "
                      f"(failed tries: {results['accept_errors']})", file=sys.stderr)
        return out

    def check_product(self, n: int, alarm: int, t0: float, accepted: int) -> dict:
        """The database agrees with the clients: N recipients, and every acceptance the clients saw
        answered (all N when all were answered; requests still under way may add to it otherwise)."""
        facts = self.control.call("alarm", alarm=alarm)
        expected_ok = facts["accepted"] == n if accepted == n else facts["accepted"] >= accepted
        if facts["recipients"] != n or not expected_ok:
            raise BenchmarkError(f"alarm {alarm}: {facts['accepted']} of {facts['recipients']} recipients "
                                 f"accepted in the database; the clients had {accepted} of {n} answered")
        status, body = request(self.product_port, "POST", f"/api/v1/alarms/{alarm}/end",
                               {"reason": "benchmark run over"}, {"X-API-Key": self.world[str(n)]["api_key"]})
        if status != 200:
            raise BenchmarkError(f"ending alarm {alarm}: {status} {body[:300]!r}")
        # Server side, from the database: when the trigger's transaction began and when its stream
        # event was written (the commit and the publication follow right after).
        return {"alarm": alarm, "txn_start_ms": (facts["started_at"] - t0) * 1000,
                "event_written_ms": (facts["event_at"] - t0) * 1000}

    def warm_up(self, n: int) -> str:
        """One alarm to the N recipients with one client connected: the code paths are warm, and its
        alarm frame is what the bare server sends (the same text: the clients parse the same JSON)."""
        clients, results_file = self.clients("product", 1, site=n)
        try:
            clients.wait_for("ready", timeout=60)
            alarm = self.trigger("product", n, "")
            clients.wait_for("done", timeout=600)
        finally:
            clients.stop()
        status, _body = request(self.product_port, "POST", f"/api/v1/alarms/{alarm}/end", {"reason": "warm-up"},
                                {"X-API-Key": self.world[str(n)]["api_key"]})
        if status != 200:
            raise BenchmarkError(f"ending the warm-up alarm: {status}")
        return json.loads(results_file.read_text())["frame"]


def _read_trace(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def trace_figures(path: Path, alarm: int, t0: float, last_receipt: float) -> dict:
    """The server's own marks for the alarm (``--trace``), in ms after the trigger request was sent."""
    marks = _read_trace(path)
    publish = next(m for m in marks if m["what"] == "publish" and m.get("alarm") == alarm
                   and m["type"] == "alarm.raised")
    site, seq = publish["site"], publish["seq"]
    key = f"alarm.raised#{site}#{seq}"
    deadline = time.monotonic() + 15
    while not any(m["what"] == "sent" and m["event"] == key for m in marks) and time.monotonic() < deadline:
        time.sleep(0.5)  # the server writes its send figures a few seconds after the first send
        marks = _read_trace(path)

    def at(what: str, field: str = "at") -> float | None:
        found = next((m for m in marks if m["what"] == what and m["at"] >= publish["at"]
                      and ((m.get("site"), m.get("seq")) == (site, seq) or m.get("event") == key)), None)
        return None if found is None else round((found[field] - t0) * 1000, 1)

    rechecks = [m for m in marks if m["what"] == "recheck" and m["at"] + m["seconds"] >= t0 - 0.1
                and m["at"] <= last_receipt]
    return {"published_ms": round((publish["at"] - t0) * 1000, 1), "members_start_ms": at("members"),
            "members_done_ms": at("members_done"), "offer_start_ms": at("offer"), "offer_done_ms": at("offer_done"),
            "first_sent_ms": at("sent", "first"), "last_sent_ms": at("sent", "last"),
            "recheck_during_s": round(sum(m["seconds"] for m in rechecks), 3),
            "recheck_max_s": round(max((m["seconds"] for m in marks if m["what"] == "recheck"), default=0), 3)}


# ---------------------------------------------------------------- report


MEDIAN_KEYS = ("p50_ms", "p99_ms", "max_ms", "min_ms", "trigger_answered_ms", "last_accept_s", "accept_p50_s",
               "answer_p50_ms", "answer_p99_ms", "answers_per_s", "accepted",
               "failed_tries", "txn_start_ms", "event_written_ms", "published_ms", "members_done_ms",
               "offer_start_ms", "offer_done_ms", "first_sent_ms", "last_sent_ms", "recheck_during_s",
               "connect_s", "foreign_cpu_s")


def summarize(runs: list[dict]) -> dict:
    """Per N and kind: the median of each figure over the repetitions, and the p99 ratio."""
    summary: dict[str, dict] = {}
    for n in sorted({r["n"] for r in runs}):
        entry: dict = {}
        for kind in ("bare", "product"):
            mine = [r for r in runs if r["n"] == n and r["kind"] == kind]
            entry[kind] = {k: round(statistics.median([r[k] for r in mine]), 3) for k in MEDIAN_KEYS
                           if all(r.get(k) is not None for r in mine)}
            entry[kind]["heartbeat_during"] = sum(r["heartbeat_during"] for r in mine)
            entry[kind]["repetitions"] = len(mine)
        entry["frame_bytes"] = max(r["frame_bytes"] for r in runs if r["n"] == n)
        entry["ratio_p99"] = round(entry["product"]["p99_ms"] / entry["bare"]["p99_ms"], 2)
        entry["ratio_p50"] = round(entry["product"]["p50_ms"] / entry["bare"]["p50_ms"], 2)
        summary[str(n)] = entry
    return summary


def print_table(summary: dict, repeat: int) -> None:
    print(f"\nfanout: trigger → receipt of the alarm frame, median of {repeat} repetition(s) per figure")
    header = (f"{'N':>6}  {'server':<8} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'p99 ratio':>10} "
              f"{'last accept s':>16} {'failed tries':>13} {'heartbeat':>10}")
    print(header)
    print("-" * len(header))
    for n, entry in summary.items():
        for kind in ("bare", "product"):
            row = entry[kind]
            accept = f"{row['last_accept_s']:.2f}" if "last_accept_s" in row else "-"
            if kind == "product" and "last_accept_s" not in row and row.get("accepted") is not None:
                accept = f"{row['accepted']:.0f}/{n} in time"
            failed = f"{row['failed_tries']:.0f}" if "failed_tries" in row else "-"
            ratio = f"{entry['ratio_p99']:.2f}×" if kind == "product" else ""
            beats = f"{row['heartbeat_during']}/{row['repetitions']}" if kind == "product" else ""
            print(f"{n:>6}  {kind:<8} {row['p50_ms']:>9.1f} {row['p99_ms']:>9.1f} {row['max_ms']:>9.1f} "
                  f"{ratio:>10} {accept:>16} {failed:>13} {beats:>10}")
    print("target: product p99 within 1.5× of the bare server; 'failed tries': acceptance requests that failed "
          "and were sent again (up to 4 tries);\n'heartbeat': runs in which the server's 15-s heartbeat to "
          "every socket went out during the measurement\n")


# ---------------------------------------------------------------- main


def benchmark(args, tmp: Path) -> dict:
    data_dir = tmp / "data"
    product_port, bare_port = free_port(), free_port()
    runs: list[dict] = []
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(args.database_url or ""))
        env = product_env(data_dir, product_port, database_url)
        control = Control(env, tmp / "control.log")
        stack.callback(control.stop)
        control.call("migrate")
        started = time.monotonic()
        world = control.call("world", counts=args.clients, out_dir=str(tmp), evacuates=args.answer_kind == "status",
                             timeout=1800)
        print(f"setup: {sum(args.clients)} people with sessions and app tokens in "
              f"{time.monotonic() - started:.0f} s", file=sys.stderr)
        server = start_product(env, tmp, product_port, args.server_wrapper.split() if args.server_wrapper else [],
                               tmp / "trace.jsonl" if args.trace else None)
        stack.callback(server.stop)
        bare = Lines("bare server", [PYTHON, str(HERE / "bare_ws.py"), str(bare_port)], env, tmp / "bare.log")
        stack.callback(bare.stop)
        bare.wait_for("ready", timeout=30)
        bench = Bench(args, tmp, control, world, product_port, bare_port, [server.process.pid, bare.process.pid])
        for n in args.clients:
            frame = bench.warm_up(n)
            for repetition in range(args.repeat):
                for kind in ("bare", "product"):
                    run = bench.run(kind, n, frame)
                    run["repetition"] = repetition + 1
                    runs.append(run)
                    print(f"N={n} {kind:<7} #{repetition + 1}: p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms, "
                          f"max {run['max_ms']:.1f} ms" + (f", last acceptance {run['last_accept_s']:.2f} s"
                                                            if "last_accept_s" in run else ""), file=sys.stderr)
    return {"runs": runs, "database": "postgresql" if args.database_url else "sqlite"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[2000, 10000], help="the client counts N")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per N (median reported)")
    parser.add_argument("--database-url", help="postgresql://… of a server: a fresh database is made and dropped")
    parser.add_argument("--after-connect", type=float, default=5.0,
                        help="seconds between the last client being ready and the trigger (default 5)")
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--accept-concurrency", type=int, default=200)
    parser.add_argument("--accept-timeout", type=float, default=900)
    parser.add_argument("--accept-after", type=float, default=1.0,
                        help="seconds between a client receiving the alarm and tapping 'accept' (default 1)")
    parser.add_argument("--accept-spread", type=float, default=0.0,
                        help="the clients tap 'accept' spread evenly over this many seconds after --accept-after "
                             "(N / spread answers a second; default 0: all at once)")
    parser.add_argument("--answer-via", choices=("socket", "api"), default="socket",
                        help="how the clients accept: over their stream socket, as the app does (default), or "
                             "with POST /api/v1/alarms/{id}/answer and their app token")
    parser.add_argument("--answer-kind", choices=("accept", "status"), default="accept",
                        help="status: the scenario evacuates the site and each client reports itself 'safe' "
                             "(over the socket, or with POST /api/v1/alarms/{id}/status) instead of accepting")
    parser.add_argument("--accept", action=argparse.BooleanOptionalAction, default=True,
                        help="--no-accept: the clients only receive (to see the fan-out without the answers' load)")
    parser.add_argument("--bare-padding", action="store_true",
                        help="the bare server sends a frame of the same length padded with 'x' (one JSON string) "
                             "instead of the product's alarm frame (the baseline until 2026-11-28)")
    parser.add_argument("--work-dir", default="/tmp/h-fanout", help="where the temporary data directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and logs (for debugging)")
    parser.add_argument("--trace", action="store_true",
                        help="run the product through benchmarks/traced_server.py: the server's own time marks "
                             "(commit, recipients read, outboxes filled, first and last frame written)")
    parser.add_argument("--profile", metavar="DIR",
                        help="sample the product's server with py-spy during each product run (raw stacks in DIR)")
    parser.add_argument("--profile-seconds", type=int, default=3)
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable for --profile")
    parser.add_argument("--server-wrapper", default="",
                        help="a command that runs the product's server, e.g. 'py-spy record -o out.svg --' "
                             "(for profiling; the figures are then not comparable)")
    args = parser.parse_args()
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fanout-", dir=args.work_dir))
    try:
        result = benchmark(args, tmp)
    except BenchmarkError as exc:
        print(f"fanout benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = summarize(result["runs"])
    print_table(summary, args.repeat)
    print(json.dumps({"benchmark": "fanout", "database": result["database"], "repeat": args.repeat,
                      "accept": args.accept, "accept_after_s": args.accept_after, "traced": args.trace,
                      "cores": os.cpu_count(), "summary": summary, "runs": result["runs"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
