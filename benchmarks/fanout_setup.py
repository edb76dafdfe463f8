"""The database side of the ``fanout`` benchmark: a control process with Django set up.

It runs against the benchmark's own data directory and database (``RP_DATA_DIR``,
``RP_DATABASE_URL`` in its environment) and reads one JSON command per line on
stdin, answering one ``@@fanout {json}`` line on stdout (see :func:`serve`).

``world`` builds, per client count N, a site with N employees (bulk inserts with
real encryption, :func:`tests.population.add_people`), a signed-in session and an
app token for each (written directly with the project's session store and token
hash, as sign-in and ``apptokens.issue`` leave them, without one security event per
token), a scenario whose first level alerts every employee on the in-app channel
only and asks for acceptance, and an API key for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rallypoint.settings")

import django  # noqa: E402

django.setup()

from django.contrib.sessions.backends.base import VALID_KEY_CHARS  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402

from rallypoint.accounts.mfa_models import OrganizationSecurity  # noqa: E402
from rallypoint.accounts.models import AppToken, UserSession  # noqa: E402
from rallypoint.accounts.sessions import SessionStore  # noqa: E402
from rallypoint.alarms.models import Alarm, AlarmRecipient, Scenario  # noqa: E402
from rallypoint.evacuation.models import PersonState  # noqa: E402
from rallypoint.integrations.actions import create_api_key  # noqa: E402
from rallypoint.people.models import Membership  # noqa: E402
from rallypoint.realtime.models import StreamEvent  # noqa: E402
from rallypoint.tenants import actions as tenant_actions  # noqa: E402
from rallypoint.tenants.roles import Role  # noqa: E402
from tests.alarm_fixtures import fire_scenario  # noqa: E402
from tests.population import add_people  # noqa: E402
from tests.realtime_helpers import serve, signed_in_data  # noqa: E402

ANSWER = "@@fanout "
BATCH = 1000


def _session_row(membership: Membership, now: int) -> UserSession:
    """A session row as the sign-in view leaves it (user, backend, auth hash, sign-in time, site)."""
    store = SessionStore()
    store._session_key = get_random_string(32, VALID_KEY_CHARS)
    return store.create_model_instance(signed_in_data(membership, now))


def _sign_in_all(memberships: list[Membership]) -> list[tuple[str, str]]:
    """A session and an app token for each person: ``[(session key, token)]`` in the same order."""
    now = int(time.time())
    sessions, tokens, pairs = [], [], []
    for membership in memberships:
        row = _session_row(membership, now)
        token = "rp_" + secrets.token_urlsafe(32)
        sessions.append(row)
        tokens.append(AppToken(user=membership.user, site_id=membership.site_id, name="Fan-out benchmark",
                               token_hash=hashlib.sha256(token.encode()).hexdigest()))
        pairs.append((row.session_key, token))
    UserSession.objects.bulk_create(sessions, batch_size=BATCH)
    AppToken.objects.bulk_create(tokens, batch_size=BATCH)
    return pairs


def _site_for(organization, count: int, out_dir: Path, evacuates: bool) -> dict:
    site = tenant_actions.create_site(actor=None, organization=organization, name=f"Fan-out {count}")
    with transaction.atomic():
        memberships = add_people(site, count, prefix=f"fanout{count}", phone=False)
        memberships = list(Membership.objects.filter(pk__in=[m.pk for m in memberships])
                           .select_related("user").order_by("pk"))
        pairs = _sign_in_all(memberships)
        scenario = fire_scenario(site, name="Fan-out", channels=("inapp",), roles=(Role.EMPLOYEE,),
                                 evacuates=Scenario.Evacuates.ALL if evacuates else Scenario.Evacuates.NONE)
    _key, raw_key = create_api_key(actor=None, site=site, name="Benchmark panel", scenarios=[scenario])
    people = out_dir / f"people-{count}.tsv"
    people.write_text("".join(f"{session}\t{token}\n" for session, token in pairs))
    people.chmod(0o600)
    return {"site": site.pk, "scenario": scenario.pk, "api_key": raw_key, "people": str(people)}


class Commands:
    @staticmethod
    def migrate() -> bool:
        call_command("migrate", interactive=False, verbosity=0)
        return True

    @staticmethod
    def world(counts: list[int], out_dir: str, evacuates: bool = False) -> dict:
        organization = tenant_actions.create_organization(name="Fan-out benchmark")
        OrganizationSecurity.objects.create(organization=organization,
                                            second_factor=OrganizationSecurity.SecondFactor.OPTIONAL)
        return {str(n): _site_for(organization, n, Path(out_dir), evacuates) for n in counts}

    @staticmethod
    def alarm(alarm: int) -> dict:
        """Facts of one alarm from the database: answers and the server-side times of the trigger."""
        found = Alarm.objects.get(pk=alarm)
        event = StreamEvent.objects.filter(alarm_id=alarm, type="alarm.raised").order_by("seq").first()
        recipients = AlarmRecipient.objects.filter(alarm_id=alarm)
        # "accepted": the answers, or in an evacuation the people reported safe
        answered = (PersonState.objects.filter(alarm_id=alarm, status="safe").count()
                    if found.scenario.evacuates else recipients.filter(answer="accepted").count())
        return {"recipients": recipients.count(), "accepted": answered,
                "started_at": found.started_at.timestamp(),
                "event_at": event.at.timestamp() if event else None,
                "frame_bytes": len(json.dumps(event.payload, separators=(",", ":"), ensure_ascii=False))
                if event else None}


if __name__ == "__main__":
    serve(Commands, ANSWER)
