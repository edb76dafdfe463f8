"""Dispatch benchmark: one alarm to N people by e-mail, Web Push and SMS, through real worker processes.

    .venv/bin/python benchmarks/dispatch.py --recipients 10000 [--workers 1] [--database-url postgresql://…]

What it measures
  * product: from the moment ``trigger_alarm`` is called until the last of the N × 3 messages has
    arrived at the local sinks (SMTP server, SMS gateway, Web Push service that verifies VAPID and
    decrypts every message), and the deliveries per second per worker process;
  * baseline, in the same run and against the same sinks: a bare sender with the same number of
    threads that sends the same number of messages (SMTP over kept connections, HTTP POSTs, Web Push
    encrypted by pywebpush and POSTed with urllib3, like the worker) and does nothing else — no
    database, no rendering, no bookkeeping. It shows what the sinks and this machine allow; the ratio
    shows what Rallypoint's worker costs on top.

Target (DESIGN.md): at least 1,000 deliveries per second per worker process. The sinks run in
their own process on the same 2 cores, so they compete with the worker for CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import fresh_database  # noqa: E402

CHANNELS = ("email", "push", "sms")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) the process has used so far."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """CPU time the process has used so far in user space and in the kernel (all threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


class Sinks:
    def __init__(self):
        self.process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "sink_process.py")],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.info = self._read()

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the sink process ended early")
        return json.loads(line)

    def ask(self, request: dict):
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def total(self) -> int:
        counts = self.ask({"count": True})
        if counts["rejected"]:
            raise RuntimeError(f"the push service rejected {counts['rejected']} messages")
        return counts["smtp"] + counts["http"] + counts["push"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(10)


def _setup(count: int, sinks: Sinks):
    """Migrate, create a site with ``count`` people who each have an e-mail, a phone and a browser."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    from rallypoint.alarms.models import Level, Scenario
    from rallypoint.notify.channels.webpush import vapid
    from rallypoint.notify.channels.webpush.subscriptions import endpoint_hash
    from rallypoint.notify.models import PushSubscription
    from rallypoint.tenants import actions
    from rallypoint.tenants.roles import Role
    from tests.population import add_people

    org = actions.create_organization(name="Benchmark")
    site = actions.create_site(actor=None, organization=org, name="Plant")
    people = add_people(site, count, prefix="bench")
    subs = sinks.ask({"subscribe": count, "key": vapid.application_server_key()})
    PushSubscription.objects.bulk_create([
        PushSubscription(site=site, membership=m, endpoint=s["endpoint"], endpoint_hash=endpoint_hash(s["endpoint"]),
                         p256dh=s["keys"]["p256dh"], auth=s["keys"]["auth"], label="bench")
        for m, s in zip(people, subs, strict=True)], batch_size=1000)
    scenario = Scenario.objects.create(site=site, name="Fire", message_template="Fire at {location}. Leave now.",
                                       instructions={Role.EMPLOYEE: "Leave by the nearest exit."})
    Level.objects.create(site=site, scenario=scenario, name="Evacuate", channels=list(CHANNELS),
                         recipient_roles=[Role.EMPLOYEE])
    return site, scenario, people, subs


def _start_workers(n: int, env: dict, tmp: Path) -> list[subprocess.Popen]:
    workers = []
    for i in range(n):
        log = (tmp / f"worker{i}.log").open("wb")
        workers.append(subprocess.Popen([sys.executable, "-m", "rallypoint", "worker"], env=env, stdout=log,
                                        stderr=subprocess.STDOUT, cwd=ROOT))
    deadline = time.monotonic() + 60
    for i in range(n):
        while b"delivery worker started" not in (tmp / f"worker{i}.log").read_bytes():
            if time.monotonic() > deadline or workers[i].poll() is not None:
                raise RuntimeError((tmp / f"worker{i}.log").read_text())
            time.sleep(0.05)
    return workers


def _wait_for(sinks: Sinks, expected: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (got := sinks.total()) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {got} of {expected} messages arrived")
        time.sleep(0.01)
    return time.time()


def run_product(args, sinks: Sinks, env: dict, tmp: Path, site, scenario) -> dict:
    from rallypoint.alarms.actions import trigger_alarm

    workers = _start_workers(args.workers, env, tmp)
    try:
        before = sinks.total()
        cpu_before = [cpu_split(w.pid) for w in workers], cpu_seconds(sinks.process.pid)
        t0 = time.time()
        alarm, _ = trigger_alarm(site=site, scenario=scenario, user=None, location_text="Hall 4")
        written = time.time()
        expected = before + args.recipients * len(CHANNELS)
        done = _wait_for(sinks, expected, timeout=600)
        worker_cpu = [sum(after) - sum(before) for after, before in
                      zip(zip(*(cpu_split(w.pid) for w in workers), strict=True), zip(*cpu_before[0], strict=True),
                          strict=True)]
        sink_cpu = cpu_seconds(sinks.process.pid) - cpu_before[1]
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(60)
    from django.db.models import Count

    from rallypoint.notify.models import Delivery, DeliveryAttempt

    states = dict(Delivery.objects.filter(alarm=alarm).values_list("state").annotate(n=Count("pk"))
                  .values_list("state", "n"))
    send_ms = {}  # per channel: how long one send took in the worker's thread (p50, p99), from the attempts
    for channel in CHANNELS:
        durations = sorted(DeliveryAttempt.objects.filter(delivery__alarm=alarm, delivery__channel=channel)
                           .values_list("duration_ms", flat=True))
        if durations:
            send_ms[channel] = [durations[len(durations) // 2], durations[int(len(durations) * 0.99)]]
    seconds = done - t0
    total = args.recipients * len(CHANNELS)
    return {"messages": total, "write_s": round(written - t0, 3), "seconds": round(seconds, 2),
            "per_second": round(total / seconds), "per_second_per_worker": round(total / seconds / args.workers),
            "states": states, "send_ms_p50_p99": send_ms,
            # CPU used meanwhile, in cores (1.0 = one core busy all the time): what limits the rate
            "worker_cores": round(sum(worker_cpu) / seconds / args.workers, 2),
            "worker_kernel_cores": round(worker_cpu[1] / seconds / args.workers, 2),
            "sink_cores": round(sink_cpu / seconds, 2)}


def run_bare(args, sinks: Sinks, people, subs, threads: int) -> dict:
    """The same messages sent by a bare sender: what the sinks and the machine allow."""
    import threading

    import urllib3
    from pywebpush import WebPusher

    from rallypoint.notify.channels.webpush import vapid

    local = threading.local()
    smtp_port, http_port = sinks.info["smtp"], sinks.info["http"]
    push_origin = "https://" + sinks.info["push"]

    def send(i: int) -> None:
        kind, n = CHANNELS[i % 3], i // 3
        if kind == "email":
            if not hasattr(local, "smtp"):
                local.smtp = smtplib.SMTP("127.0.0.1", smtp_port)
            body = f"Subject: Fire\r\nMessage-ID: <{i}@bench>\r\n\r\nFire at Hall 4. Leave now.\r\n"
            local.smtp.sendmail("rallypoint@localhost", [f"bench-{n}@example.org"], body)
        elif kind == "sms":
            if not hasattr(local, "http"):
                local.http = urllib3.HTTPConnectionPool("127.0.0.1", http_port, maxsize=1)
            local.http.request("POST", "/sms", body=json.dumps({"to": f"+4917{n:09d}", "text": "Fire at Hall 4"}),
                               headers={"Content-Type": "application/json"})
        else:  # the same HTTP client as the product's push channel: kept-alive urllib3
            if not hasattr(local, "push"):
                local.push = urllib3.PoolManager(num_pools=1, maxsize=1, ca_certs=sinks.info["ca_file"],
                                                 cert_reqs="CERT_REQUIRED")
            body = WebPusher(subs[n]).encode(json.dumps({"title": "Fire", "body": "Fire at Hall 4"}).encode(),
                                             "aes128gcm")["body"]
            headers = {"Authorization": vapid.authorization(push_origin), "Content-Encoding": "aes128gcm",
                       "TTL": "60", "Urgency": "high"}
            local.push.request("POST", subs[n]["endpoint"], body=body, headers=headers, timeout=30)

    before = sinks.total()
    total = len(people) * len(CHANNELS)
    cpu_before = cpu_split(os.getpid()), cpu_seconds(sinks.process.pid)
    t0 = time.time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(total)))
    done = _wait_for(sinks, before + total, timeout=600)
    seconds = done - t0
    return {"messages": total, "seconds": round(seconds, 2), "per_second": round(total / seconds),
            "sender_cores": round((cpu_seconds(os.getpid()) - sum(cpu_before[0])) / seconds, 2),
            "sender_kernel_cores": round((cpu_split(os.getpid())[1] - cpu_before[0][1]) / seconds, 2),
            "sink_cores": round((cpu_seconds(sinks.process.pid) - cpu_before[1]) / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=16, help="sending threads per worker (RP_WORKER_THREADS)")
    parser.add_argument("--database-url", default="", help="PostgreSQL server to use (a fresh database is made)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rp-dispatch-"))
    try:
        with fresh_database(args.database_url) as postgres:
            database_url = postgres or f"sqlite:///{tmp / 'bench.sqlite3'}"
            bare, product = _run(args, tmp, database_url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(args, database_url, bare, product)


def _run(args, tmp: Path, database_url: str) -> tuple[dict, dict]:
    sinks = Sinks()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RP_")}
    env.update(RP_DATA_DIR=str(tmp / "data"), RP_DATABASE_URL=database_url, RP_DEMO="false",
               RP_SMTP_HOST="127.0.0.1", RP_SMTP_PORT=str(sinks.info["smtp"]), RP_SMTP_SECURITY="none",
               RP_SMS_GATEWAY_URL=f"http://127.0.0.1:{sinks.info['http']}/sms",
               RP_PUSH_SERVICE_HOSTS=sinks.info["push"], RP_WORKER_THREADS=str(args.threads),
               RP_LOG_LEVEL="WARNING", REQUESTS_CA_BUNDLE=sinks.info["ca_file"])
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "rallypoint.settings"
    env["RP_LOG_LEVEL"] = "INFO"  # the workers say when they are ready
    try:
        site, scenario, people, subs = _setup(args.recipients, sinks)
        bare = run_bare(args, sinks, people, subs, args.threads)
        return bare, run_product(args, sinks, env, tmp, site, scenario)
    finally:
        sinks.close()
        from django.db import connections

        connections.close_all()  # before the database is dropped


def report(args, database_url: str, bare: dict, product: dict) -> None:
    database = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    print(f"\ndispatch: one alarm to {args.recipients:,} people × {len(CHANNELS)} channels "
          f"({', '.join(CHANNELS)}), {args.workers} worker process(es) × {args.threads} threads, {database}")
    print(f"{'sender':<28}{'messages':>10}{'seconds':>10}{'per second':>12}{'per worker':>12}")
    print(f"{'bare sender (baseline)':<28}{bare['messages']:>10,}{bare['seconds']:>10}{bare['per_second']:>12,}"
          f"{'':>12}")
    print(f"{'Rallypoint workers':<28}{product['messages']:>10,}{product['seconds']:>10}"
          f"{product['per_second']:>12,}{product['per_second_per_worker']:>12,}")
    ratio = product["per_second"] / bare["per_second"]
    target = "met" if product["per_second_per_worker"] >= 1000 else "NOT met"
    print(f"alarm written in {product['write_s']} s; Rallypoint reaches {ratio:.2f}× the bare sender's rate; "
          f"target ≥ 1,000 per second per worker: {target}; delivery states: {product['states']}")
    print(f"CPU in cores: bare sender {bare['sender_cores']} (of which {bare['sender_kernel_cores']} in the kernel), "
          f"sinks {bare['sink_cores']}; "
          f"Rallypoint worker {product['worker_cores']} each "
          f"(of which {product['worker_kernel_cores']} in the kernel), sinks {product['sink_cores']}")
    print("one send in a worker thread, p50 / p99 ms: " + ", ".join(
        f"{channel} {p50} / {p99}" for channel, (p50, p99) in product["send_ms_p50_p99"].items()))
    print(json.dumps({"benchmark": "dispatch", "database": database, "recipients": args.recipients,
                      "workers": args.workers, "threads": args.threads, "bare": bare, "product": product,
                      "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
