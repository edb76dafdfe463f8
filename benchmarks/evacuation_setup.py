"""The database side of the ``evacuation`` benchmark: a control process with Django set up on the benchmark's
data directory and database; one JSON command per line on stdin, one ``@@evac {json}`` answer on stdout.

``world`` builds a site with N people (bulk inserts with real encryption) present in Z zones (two
buildings, floors of five zones each) that evacuate to P assembly points, each person with an app token;
L roll-call leads (crisis-team leads: their session for the live stream and an app token for the marks)
and C cockpit viewers (crisis-team members: a session); an evacuation scenario that alerts all of them
(in the app only) and its alarm, raised.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rallypoint.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.fanout_setup import _session_row  # noqa: E402
from rallypoint.accounts.mfa_models import OrganizationSecurity  # noqa: E402
from rallypoint.accounts.models import AppToken, UserSession  # noqa: E402
from rallypoint.alarms.actions import trigger_alarm  # noqa: E402
from rallypoint.alarms.models import Alarm  # noqa: E402
from rallypoint.evacuation import rollcall  # noqa: E402
from rallypoint.evacuation.models import AssemblyPoint, Building, Floor, PersonState, Presence, Zone  # noqa: E402
from rallypoint.people.models import Membership  # noqa: E402
from rallypoint.tenants import actions as tenant_actions  # noqa: E402
from rallypoint.tenants.roles import Role  # noqa: E402
from tests.alarm_fixtures import fire_scenario  # noqa: E402
from tests.population import add_people  # noqa: E402
from tests.realtime_helpers import serve  # noqa: E402

ANSWER = "@@evac "
BATCH = 1000


def _structure(site, zones: int, points: int) -> tuple[list[Zone], list[AssemblyPoint]]:
    made = []
    per_floor = 5
    floors_each = max(1, zones // per_floor // 2)
    for b in range(2):
        building = Building.objects.create(site=site, name=f"Building {b + 1}", position=b + 1)
        for f in range(floors_each):
            floor = Floor.objects.create(site=site, building=building, name=f"Floor {f}", level=f)
            for z in range(per_floor):
                if len(made) < zones:
                    made.append(Zone.objects.create(site=site, floor=floor, name=f"Zone {b + 1}.{f}.{z}",
                                                    code=f"Z{b + 1}{f}{z}"))
    assembly = []
    for p in range(points):
        point = AssemblyPoint.objects.create(site=site, name=f"Assembly point {p + 1}")
        point.zones.add(*made[p::points])
        assembly.append(point)
    return made, assembly


def _tokens(memberships: list[Membership]) -> list[str]:
    tokens, rows = [], []
    for membership in memberships:
        token = "rp_" + secrets.token_urlsafe(32)
        rows.append(AppToken(user=membership.user, site_id=membership.site_id, name="Evacuation benchmark",
                             token_hash=hashlib.sha256(token.encode()).hexdigest()))
        tokens.append(token)
    AppToken.objects.bulk_create(rows, batch_size=BATCH)
    return tokens


def _sessions(memberships: list[Membership]) -> list[str]:
    now = int(time.time())
    rows = [_session_row(m, now) for m in memberships]
    UserSession.objects.bulk_create(rows, batch_size=BATCH)
    return [row.session_key for row in rows]


def _write(path: Path, rows: list) -> str:
    path.write_text("".join("\t".join(str(x) for x in row) + "\n" for row in rows))
    path.chmod(0o600)
    return str(path)


class Commands:
    @staticmethod
    def migrate() -> bool:
        call_command("migrate", interactive=False, verbosity=0)
        return True

    @staticmethod
    def world(people: int, zones: int, points: int, leads: int, cockpits: int, out_dir: str) -> dict:
        out = Path(out_dir)
        organization = tenant_actions.create_organization(name="Evacuation benchmark")
        OrganizationSecurity.objects.create(organization=organization,
                                            second_factor=OrganizationSecurity.SecondFactor.OPTIONAL)
        site = tenant_actions.create_site(actor=None, organization=organization, name="Evacuation")
        with transaction.atomic():
            made, assembly = _structure(site, zones, points)
            everyone = add_people(site, people, prefix="evac", phone=False)
            lead_rows = add_people(site, leads, prefix="lead", role=Role.LEAD, phone=False)
            cockpit_rows = add_people(site, cockpits, prefix="cockpit", role=Role.MEMBER, phone=False)
            ids = [m.pk for m in everyone + lead_rows + cockpit_rows]
            members = {m.pk: m for m in Membership.objects.filter(pk__in=ids).select_related("user")}
            everyone = [members[m.pk] for m in everyone]
            lead_rows = [members[m.pk] for m in lead_rows]
            cockpit_rows = [members[m.pk] for m in cockpit_rows]
            until = timezone.now() + timedelta(hours=12)
            Presence.objects.bulk_create([Presence(site=site, membership=m, zone=made[i % len(made)],
                                                   source="api", expires_at=until)
                                          for i, m in enumerate(everyone)], batch_size=BATCH)
            scenario = fire_scenario(site, name="Fire", channels=("inapp",), evacuates="all",
                                     roles=(Role.EMPLOYEE, Role.LEAD, Role.MEMBER))
        alarm, _created = trigger_alarm(site=site, scenario=scenario, level=scenario.levels.first())
        point_of_zone = {z.pk: p.pk for p in assembly for z in p.zones.all()}
        people_file = _write(out / "people.tsv", [(m.pk, t, point_of_zone[made[i % len(made)].pk])
                                                  for i, (m, t) in enumerate(zip(everyone, _tokens(everyone),
                                                                                 strict=True))])
        leads_file = _write(out / "leads.tsv", list(zip([m.pk for m in lead_rows], _sessions(lead_rows),
                                                        _tokens(lead_rows), strict=True)))
        cockpit_file = _write(out / "cockpits.tsv", [(s,) for s in _sessions(cockpit_rows)])
        return {"site": site.pk, "alarm": alarm.pk, "people": people_file, "leads": leads_file,
                "cockpits": cockpit_file, "points": [p.pk for p in assembly]}

    @staticmethod
    def missing_time(alarm: int, repeat: int = 5) -> dict:
        """How long the missing list and the counts take, median of ``repeat`` (ms), and their sizes."""
        found = Alarm.objects.select_related("scenario").get(pk=alarm)
        times, count_times, size = [], [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            size = len(rollcall.missing(found))
            times.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            rollcall.counts(found)
            count_times.append((time.perf_counter() - started) * 1000)
        return {"missing_ms": sorted(times)[len(times) // 2], "counts_ms": sorted(count_times)[len(times) // 2],
                "missing": size, "states": PersonState.objects.filter(alarm=found).count()}

    @staticmethod
    def bare_inserts(count: int) -> dict:
        """The baseline: one plain INSERT per report (its own transaction, like an autocommit client) into a
        table of the same shape as the reports, on the same database."""
        table = "bench_bare_report"
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, alarm_id bigint, membership_id bigint, "
                           "status varchar(12), at varchar(40))")
        started = time.perf_counter()
        for i in range(count):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"INSERT INTO {table} (id, alarm_id, membership_id, status, at) "  # noqa: S608
                               "VALUES (%s, %s, %s, %s, %s)", [i, 1, i, "safe", timezone.now().isoformat()])
        seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {table}")
        return {"inserts": count, "seconds": seconds, "per_s": count / seconds}

    @staticmethod
    def states(alarm: int) -> dict:
        return {"states": PersonState.objects.filter(alarm_id=alarm).count()}


if __name__ == "__main__":
    serve(Commands, ANSWER)
