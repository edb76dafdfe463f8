"""Does the time of a password-link request tell whether the address has an account?

    .venv/bin/python benchmarks/password_link_timing.py [--requests 300] [--database-url postgresql://…]

The real request handling (Django's test client in this process, the real view, middleware and database;
no network) answers ``POST /accounts/password-reset/`` for a known and for an unknown address, in
alternation, each with its own solved proof of work (solved before the clock starts). Prints the
median, p90 and mean of each, their difference, and as its last line a JSON object with every figure.
A baseline in the same run: the same request with a form error (no look-up at all).

Before 2026-12-02 a known address's request wrote a security event and handed the e-mail to the mail
server before it answered; now both write the same rows and the worker sends the e-mail.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300, help="requests per kind")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    data = tempfile.mkdtemp(prefix="h-reset-")
    os.environ.update(RP_DATA_DIR=data, RP_DEMO="false", RP_POW_MAX_COUNTER="8", RP_LOG_LEVEL="ERROR")
    from tests.server import fresh_database

    with fresh_database(args.database_url or "") as database:
        if database:
            os.environ["RP_DATABASE_URL"] = database
        run(args.requests)


def run(count: int) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rallypoint.settings")
    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from rallypoint.people.actions import create_person
    from rallypoint.tenants import actions
    from tests.pow import pow_field

    call_command("migrate", verbosity=0)
    site = actions.create_site(actor=None, organization=actions.create_organization(name="Timing"), name="HQ")
    create_person(actor=None, site=site, data={"email": "known@example.org", "full_name": "Known", "role": "employee"})
    client = Client(SERVER_NAME="localhost")
    url = "/accounts/password-reset/"
    kinds = {"known": "known@example.org", "unknown": "nobody@example.org", "form error": "not an address"}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(count):
        for kind, email in kinds.items():
            body = {"email": email, **pow_field(client, url)}
            started = time.perf_counter()
            client.post(url, body)
            times[kind].append((time.perf_counter() - started) * 1000)
    figures = {}
    print(f"{'request':<12} {'median ms':>10} {'p90 ms':>8} {'mean ms':>8}")
    for kind, values in times.items():
        values.sort()
        row = {"median": round(statistics.median(values), 3), "p90": round(values[int(len(values) * 0.9)], 3),
               "mean": round(statistics.fmean(values), 3)}
        figures[kind] = row
        print(f"{kind:<12} {row['median']:>10} {row['p90']:>8} {row['mean']:>8}")
    figures["known_minus_unknown_median_ms"] = round(figures["known"]["median"] - figures["unknown"]["median"], 3)
    print(f"known − unknown (median): {figures['known_minus_unknown_median_ms']} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
