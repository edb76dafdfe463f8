"""Forget this person: erased at once, their records shown as "deleted person #N" and gone later, and their
data key destroyed so that a copy of the database taken before cannot bring them back (crypto-shredding)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from rallypoint.accounts.models import User
from rallypoint.alarms.actions import answer_alarm, trigger_alarm
from rallypoint.alarms.models import AlarmRecipient, Scenario
from rallypoint.audit.models import AuditEntry, SecurityEvent
from rallypoint.evacuation import status
from rallypoint.evacuation.models import PersonState, StatusReport
from rallypoint.notify.models import MessengerAddress
from rallypoint.people import forget
from rallypoint.people.models import Group, Membership
from rallypoint.tenants import encryption, keystore
from rallypoint.tenants.roles import Role
from tests.alarm_fixtures import fire_scenario
from tests.conftest import PASSWORD


def _raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - names are literals here
        return cursor.fetchone()[0]


def test_a_persons_fields_are_under_their_own_data_key(world):
    employee = world.a.people[Role.EMPLOYEE]
    token = _raw("tenants_membership", "full_name", employee.pk)
    assert token.startswith(f"p1.{employee.data_key}.")
    assert _raw("accounts_user", "email", employee.user_id).startswith(f"p1.{employee.user.data_key}.")
    assert employee.data_key != employee.user.data_key != world.a.people[Role.LEAD].data_key
    assert encryption.store().get_many([employee.data_key])  # the key is in the key store …
    with connection.cursor() as cursor:  # … and nowhere in the database
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            wrapped = encryption.store().get_many([employee.data_key])[employee.data_key]
            assert not any(wrapped in str(row) for row in cursor.fetchall()), table


@pytest.mark.django_db(transaction=True)
def test_forgetting_erases_at_once_and_keeps_the_record_as_deleted_person(world, send_outbox):
    site, employee, admin = world.a.site, world.a.people[Role.EMPLOYEE], world.a.people[Role.ADMIN]
    MessengerAddress.objects.create(site=site, membership=employee, url="tgram://123/456", label="Telegram")
    scenario = fire_scenario(site, evacuates=Scenario.Evacuates.ALL)
    alarm, _ = trigger_alarm(site=site, scenario=scenario, user=admin.user)
    answer_alarm(alarm=alarm, membership=employee, answer="accepted", via="app")
    status.report_status(alarm=alarm, person=employee, status="safe", note="at the gate",
                         reporter=status.Reporter(membership=employee))
    handles = [employee.data_key, employee.user.data_key]

    forget.forget_person(membership=employee, actor=admin.user, why="asked by the person")

    row = Membership.records.get(pk=employee.pk)
    assert (row.kind, row.user_id, row.is_active, row.full_name, row.phone, row.department) == (
        "forgotten", None, False, "", "", "")
    assert row.display_name == f"Deleted person #{employee.pk}"
    assert not Membership.objects.filter(pk=employee.pk).exists()  # listed and counted nowhere
    assert not User.objects.filter(pk=employee.user_id).exists()  # no other site: the account went too
    assert not MessengerAddress.objects.filter(membership_id=employee.pk).exists()
    assert not Group.objects.filter(members__pk=employee.pk).exists()
    # the record keeps the answer and the report, under the deleted person
    recipient = AlarmRecipient.objects.get(alarm=alarm, membership_id=employee.pk)
    assert recipient.answer == "accepted"
    assert recipient.membership.display_name == f"Deleted person #{employee.pk}"
    assert PersonState.objects.filter(alarm=alarm, membership_id=employee.pk, status="safe").exists()
    report = StatusReport.objects.get(alarm=alarm, membership_id=employee.pk)
    with pytest.raises(encryption.KeyForgotten):
        report.note  # noqa: B018 - reading it is the test
    assert encryption.store().get_many(handles) == {}
    assert encryption.store().forgotten(handles) == set(handles)
    entry = AuditEntry.objects.get(action="person.forgotten", object_id=str(employee.pk))
    assert "Name" not in str(entry.changes) and "@" not in str(entry.changes)

    # RP_FORGOTTEN_DAYS later the rest goes
    assert forget.purge_forgotten(timezone.now()) == 0
    later = timezone.now() + timedelta(days=settings.FORGOTTEN_DAYS, minutes=1)
    assert forget.purge_forgotten(later) == 1
    assert not Membership.records.filter(pk=employee.pk).exists()
    assert not AlarmRecipient.objects.filter(alarm=alarm, membership_id=employee.pk).exists()
    assert AlarmRecipient.objects.filter(alarm=alarm).exists()  # everyone else's answers stay


def test_an_account_at_another_site_stays_when_one_site_forgets_the_person(world):
    user = world.a.people[Role.EMPLOYEE].user
    other = Membership.objects.create(site=world.a2.site, user=user, full_name="Elsewhere")
    forget.forget_person(membership=world.a.people[Role.EMPLOYEE], actor=None, why="left")
    user.refresh_from_db()
    assert user.email == "aa-employee@example.org"
    assert Membership.objects.get(pk=other.pk).full_name == "Elsewhere"


def test_forgetting_oneself_forgets_every_site_and_the_account(world):
    user = world.a.people[Role.EMPLOYEE].user
    other = Membership.objects.create(site=world.a2.site, user=user, full_name="Elsewhere")
    forget.forget_account(user=user, why="own wish")
    assert not User.objects.filter(pk=user.pk).exists()
    assert set(Membership.records.filter(pk__in=[other.pk, world.a.people[Role.EMPLOYEE].pk]).values_list(
        "kind", flat=True)) == {"forgotten"}


@pytest.mark.django_db(transaction=True)
def test_a_backup_taken_before_cannot_bring_the_person_back(world, tmp_path):
    """Copy the database (a backup), forget the person, bring the copy back: the person's fields cannot be
    read, everyone else's still can; the purge then forgets them again."""
    employee, lead = world.a.people[Role.EMPLOYEE], world.a.people[Role.LEAD]
    if connection.vendor == "sqlite":
        backup = tmp_path / "backup.sqlite3"
        connection.ensure_connection()
        import sqlite3

        with sqlite3.connect(backup) as target:
            connection.connection.backup(target)
        forget.forget_person(membership=employee, actor=None, why="asked")
        with sqlite3.connect(backup) as source:  # the online restore: the backup API the other way round
            source.backup(connection.connection)
    else:
        tables = ["tenants_membership", "accounts_user"]
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"CREATE TABLE backup_{table} AS SELECT * FROM {table}")  # noqa: S608
        forget.forget_person(membership=employee, actor=None, why="asked")
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")  # put the rows back as a restore does
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
                cursor.execute(f"INSERT INTO {table} SELECT * FROM backup_{table}")  # noqa: S608
                cursor.execute(f"DROP TABLE backup_{table}")
            cursor.execute("SET session_replication_role = DEFAULT")

    restored = Membership.objects.get(pk=employee.pk)  # the restored row is back, encrypted …
    assert restored.kind == "member"
    with pytest.raises(encryption.KeyForgotten):
        restored.full_name  # noqa: B018
    with pytest.raises(encryption.KeyForgotten):
        User.objects.get(pk=employee.user_id).email  # noqa: B018
    assert Membership.objects.get(pk=lead.pk).full_name == "NameAaleadzq"  # … everyone else reads as before
    assert User.objects.get(pk=lead.user_id).email == "aa-lead@example.org"

    assert forget.reapply() >= 1
    assert Membership.records.get(pk=employee.pk).kind == "forgotten"
    assert not User.objects.filter(pk=employee.user_id).exists()


def test_a_person_deletes_their_own_data_after_their_password_and_a_confirmation(world, signed_in):
    me = world.a.people[Role.EMPLOYEE]
    me.user.set_password(PASSWORD)
    me.user.save()
    client = signed_in(Role.EMPLOYEE)
    page = client.get("/accounts/profile/delete/").content.decode()
    assert "SiteAazq" in page and "Delete my data for good" in page
    wrong = client.post("/accounts/profile/delete/", {"password": "not it", "confirm": "on"})
    assert wrong.status_code == 400 and "That is not your password." in wrong.content.decode()
    unconfirmed = client.post("/accounts/profile/delete/", {"password": PASSWORD})
    assert unconfirmed.status_code == 400
    assert Membership.objects.filter(pk=me.pk).exists()
    assert SecurityEvent.objects.filter(user=me.user, kind=SecurityEvent.Kind.SIGN_IN_FAILED).count() == 1

    done = client.post("/accounts/profile/delete/", {"password": PASSWORD, "confirm": "on"})
    assert done.status_code == 200 and "Your data is deleted" in done.content.decode()
    assert done["Clear-Site-Data"] == '"cache", "storage"'
    assert not User.objects.filter(pk=me.user_id).exists()
    assert Membership.records.get(pk=me.pk).kind == "forgotten"
    assert client.get("/accounts/profile/").status_code == 302  # signed out


def test_the_support_account_cannot_delete_itself(world):
    support = Membership.objects.filter(site=world.a.site, user__is_support=True).get().user
    client = Client()
    client.force_login(support)
    assert client.get("/accounts/profile/delete/").status_code == 404


@pytest.fixture(params=["sqlite", "postgresql"])
def key_store(request, tmp_path):
    if request.param == "sqlite":
        return keystore.SqliteKeyStore(tmp_path / "keys.sqlite3")
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the PostgreSQL key store is tested when the suite runs on PostgreSQL")
    import psycopg

    server = f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    name = "rp_test_person_keys"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    return keystore.PostgresKeyStore(f"{server}/{name}")


def test_the_key_store_destroys_a_key_for_good(key_store):
    one, two, three = "1" * 32, "2" * 32, "3" * 32
    assert key_store.add(one, "wrapped-one-AAAA") == "wrapped-one-AAAA"
    assert key_store.add(one, "someone-else's") == "wrapped-one-AAAA"  # a race: the first one stays
    assert key_store.add_many([(two, "wrapped-two-BBBB"), (three, "wrapped-three-CCCC")]) == {
        two: "wrapped-two-BBBB", three: "wrapped-three-CCCC"}
    assert key_store.destroy([one, two]) == 2
    assert key_store.get_many([one, two, three]) == {three: "wrapped-three-CCCC"}
    assert key_store.forgotten([one, two, three]) == {one, two}
    with pytest.raises(keystore.KeyForgotten):
        key_store.add(one, "a new key for a forgotten person")
    assert key_store.add_many([(two, "again")]) == {}
    if isinstance(key_store, keystore.SqliteKeyStore):
        stored = b"".join(p.read_bytes() for p in key_store.path.parent.glob("keys.sqlite3*"))
        assert b"wrapped-one-AAAA" not in stored and b"wrapped-two-BBBB" not in stored
        assert b"wrapped-three-CCCC" in stored


def test_the_key_store_is_never_the_main_database():
    from rallypoint.lib.env import ConfigError

    with pytest.raises(ConfigError, match="main database"):
        keystore.open_store("postgresql://rp:secret@db:5432/rallypoint?sslmode=require",
                            main_database="postgresql://db/rallypoint")
    assert isinstance(keystore.open_store("postgresql://db/rallypoint_keys", main_database="postgresql://db/rallypoint"),
                      keystore.PostgresKeyStore)


def test_the_audit_trail_names_a_deleted_person_as_such(world, signed_in):
    from rallypoint.people.actions import update_own_details

    employee = world.a.people[Role.EMPLOYEE]
    employee_user = employee.user
    update_own_details(user=employee_user, membership=employee, full_name="Before Deletion", phone="")
    forget.forget_account(user=employee_user, why="own wish")
    page = signed_in(Role.ADMIN).get("/audit/").content.decode()
    assert f"Deleted account #{employee_user.pk}" in page  # the actor of the change, not "System"
    assert f"Deleted person #{employee.pk}" in page  # the object
    assert "Before Deletion" not in page and "NameAaemployeezq" not in page
