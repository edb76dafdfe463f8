"""The audit trail is tamper-evident: each site's entries (and each organisation's own) form a hash chain that
verification walks from its anchor, naming the first entry where it breaks."""

from __future__ import annotations

import importlib
import io
import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rallypoint.accounts.models import User
from rallypoint.audit.actions import purge_expired, record, record_many
from rallypoint.audit.chain import entry_hash, verify_all, verify_chain
from rallypoint.audit.models import AuditChain, AuditEntry
from rallypoint.people.models import Membership
from rallypoint.tenants.roles import SUPER_ADMIN, Role


def _record(site, n: int, **extra) -> list[AuditEntry]:
    return [record(actor=None, organization=site.organization, site=site, action="group.updated",
                   object_type="group", object_id=i, changes={"name": [f"Old{i}", f"New{i}"]}, **extra)
            for i in range(n)]


def _sql(statement: str, params: list) -> None:
    """Change the database behind the app's back, as someone with database access would."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _of_site(site) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(site=site).order_by("seq"))


def test_a_sites_entries_link_into_one_chain_and_the_organisations_own_into_another(world):
    site = world.a.site
    _record(site, 3)
    record(actor=None, organization=world.org_a, site=None, action="site.deleted", object_type="site", object_id=9)
    entries = _of_site(site)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == ""
    for before, after in zip(entries, entries[1:], strict=False):
        assert after.prev_hash == before.hash and len(after.hash) == 64
    head = AuditChain.objects.get(site=site)
    assert (head.last_seq, head.last_hash) == (entries[-1].seq, entries[-1].hash)
    org_entries = list(AuditEntry.objects.filter(organization=world.org_a, site__isnull=True).order_by("seq"))
    assert [e.seq for e in org_entries] == list(range(1, len(org_entries) + 1))
    assert AuditChain.objects.get(organization=world.org_a, site__isnull=True).last_hash == org_entries[-1].hash
    reports = verify_all()
    assert reports and all(r.ok for r in reports), [(r.key, r.problem) for r in reports]
    assert {r.key for r in reports} >= {f"site:{site.pk}", f"org:{world.org_a.pk}"}


def test_values_read_back_from_the_database_hash_as_written(world):
    """Floats, whole-number floats, nested lists, a batch and a back-dated time survive the round trip."""
    record(actor=world.a.people[Role.ADMIN].user, organization=world.org_a, site=world.a.site,
           action="marker.updated", object_type="marker", object_id=7, batch=uuid.uuid4(),
           changes={"x": [0.25, 0.3], "y": [1.0, 2], "label": ["Exit “2”", "Ausgang 3 – Süd"], "z": [None, [1, [2]]]})
    record_many([AuditEntry(organization=world.org_a, site=world.a.site, action="x", object_type="site",
                            object_id=1, at=timezone.now() - timedelta(days=3, microseconds=7))])
    assert verify_chain(world.org_a.pk, world.a.site.pk).ok


@pytest.mark.parametrize("column, value", [("changes", json.dumps({"name": ["Old1", "Forged"]})),
                                           ("action", "group.created")])
def test_an_entry_changed_in_the_database_is_found_by_its_number(world, column, value):
    entries = _record(world.a.site, 4)
    target = entries[1]
    assert verify_chain(world.org_a.pk, world.a.site.pk).ok
    _sql(f"UPDATE audit_auditentry SET {column} = %s WHERE id = %s", [value, target.pk])  # noqa: S608  # nosec B608
    report = verify_chain(world.org_a.pk, world.a.site.pk)
    assert not report.ok
    assert (report.problem, report.broken_seq, report.broken_id) == ("hash", target.seq, target.pk)


def test_an_entry_rehashed_in_the_database_breaks_the_link_of_the_next(world):
    """A forger who also recomputes the changed entry's hash breaks the link of the entry after it."""
    entries = _record(world.a.site, 3)
    first = entries[0]
    forged = entry_hash(organization_id=first.organization_id, site_id=first.site_id, seq=first.seq, at=first.at,
                        actor_ref=first.actor_ref, action="forged", object_type=first.object_type,
                        object_id=first.object_id, changes=first.changes, batch=first.batch,
                        prev_hash=first.prev_hash)
    _sql("UPDATE audit_auditentry SET action = %s, hash = %s WHERE id = %s", ["forged", forged, first.pk])
    report = verify_chain(world.org_a.pk, world.a.site.pk)
    assert (report.problem, report.broken_id) == ("link", entries[1].pk)


def test_an_entry_deleted_in_the_middle_is_found(world):
    entries = _record(world.a.site, 4)
    _sql("DELETE FROM audit_auditentry WHERE id = %s", [entries[1].pk])
    report = verify_chain(world.org_a.pk, world.a.site.pk)
    assert (report.problem, report.broken_seq, report.broken_id) == ("gap", entries[2].seq, entries[2].pk)
    assert report.reason.startswith("entries before it are missing")


def test_the_newest_entries_deleted_are_found_too(world):
    entries = _record(world.a.site, 3)
    _sql("DELETE FROM audit_auditentry WHERE id = %s", [entries[-1].pk])
    report = verify_chain(world.org_a.pk, world.a.site.pk)
    assert (report.problem, report.broken_seq) == ("tail", entries[-1].seq)


def test_the_oldest_entries_deleted_without_a_purge_are_found(world):
    first = _of_site(world.a.site)[0]
    _sql("DELETE FROM audit_auditentry WHERE id = %s", [first.pk])
    report = verify_chain(world.org_a.pk, world.a.site.pk)
    assert (report.problem, report.broken_seq) == ("anchor", 2)


def test_deleting_the_user_who_acted_keeps_the_chain_whole(world):
    user = User.objects.create_user("leaving@example.org")
    Membership.objects.create(site=world.a.site, user=user, role=Role.ADMIN, full_name="Leaving")
    entry = record(actor=user, organization=world.org_a, site=world.a.site, action="group.created",
                   object_type="group", object_id=1)
    _record(world.a.site, 1)
    user_id = user.pk
    user.delete()
    entry.refresh_from_db()
    assert entry.actor_id is None and entry.actor_ref == user_id
    assert verify_chain(world.org_a.pk, world.a.site.pk).ok


def test_a_purge_leaves_an_anchor_and_the_chain_verifiable(world, settings):
    settings.AUDIT_RETENTION_DAYS = 90
    site = world.a.site
    record_many([AuditEntry(organization=world.org_a, site=site, action="x", object_type="site", object_id=1,
                            at=timezone.now() - timedelta(days=days)) for days in (95, 92)])
    kept = _record(site, 2)
    last_expired = AuditEntry.objects.get(site=site, seq=kept[0].seq - 1)
    assert purge_expired() >= 2
    head = AuditChain.objects.get(site=site)
    assert (head.anchor_seq, head.anchor_hash, head.anchor_at) == (last_expired.seq, last_expired.hash,
                                                                    last_expired.at)
    assert [e.pk for e in _of_site(site)] == [e.pk for e in kept]
    report = verify_chain(world.org_a.pk, site.pk)
    assert report.ok and report.anchor_seq == last_expired.seq and report.entries == 2
    # A forged anchor (the purge made to look later than it was) shows.
    AuditChain.objects.filter(pk=head.pk).update(anchor_seq=head.anchor_seq + 1)
    assert verify_chain(world.org_a.pk, site.pk).problem == "repeat"
    AuditChain.objects.filter(pk=head.pk).update(anchor_seq=head.anchor_seq, anchor_hash="f" * 64)
    assert verify_chain(world.org_a.pk, site.pk).problem == "link"


def test_a_purge_of_everything_still_verifies(world, settings):
    settings.AUDIT_RETENTION_DAYS = 90
    purge_expired(now=timezone.now() + timedelta(days=91))
    assert not AuditEntry.objects.exists()
    reports = verify_all()
    assert reports and all(r.ok and r.anchor_seq == r.last_seq for r in reports)
    _record(world.a.site, 1)
    assert verify_chain(world.org_a.pk, world.a.site.pk).ok


def test_record_many_links_n_entries_with_one_read_and_one_write_of_the_head(world):
    site = world.a.site
    before = AuditChain.objects.get(site=site).last_seq
    entries = [AuditEntry(organization=world.org_a, site=site, action="evacuation.marked", object_type="alarm",
                          object_id=1, changes={"safe": [None, [n]]}) for n in range(50)]
    with CaptureQueriesContext(connection) as queries:
        written = record_many(entries)
    on_head = [q["sql"] for q in queries.captured_queries if "audit_auditchain" in q["sql"]]
    assert len(on_head) == 2, on_head  # SELECT (FOR UPDATE), UPDATE
    assert [e.seq for e in written] == list(range(before + 1, before + 51))
    assert all(e.pk for e in written)
    assert verify_chain(world.org_a.pk, site.pk).ok


def test_record_many_links_entries_of_several_sites_each_into_its_own_chain(world):
    entries = [AuditEntry(organization=sw.site.organization, site=sw.site, action="x", object_type="site",
                          object_id=1) for sw in (world.a, world.b, world.a, world.b)]
    record_many(entries)
    assert all(r.ok for r in verify_all())
    assert entries[2].prev_hash == entries[0].hash and entries[3].prev_hash == entries[1].hash


def test_the_command_exits_1_on_a_broken_chain_and_0_otherwise(world):
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    text = out.getvalue()
    head = AuditChain.objects.get(site=world.a.site)
    assert f"site {world.a.site.pk} “SiteAazq”: ok" in text and head.last_hash in text
    assert "audit chains are whole" in text
    entries = _record(world.b.site, 2)
    _sql("UPDATE audit_auditentry SET object_id = %s WHERE id = %s", ["666", entries[0].pk])
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit", stdout=out)
    assert failed.value.returncode == 1
    assert f"BROKEN at entry no. {entries[0].seq} (id {entries[0].pk}): its content was changed" in out.getvalue()
    out = io.StringIO()
    call_command("verify_audit", "--site", str(world.a.site.pk), stdout=out)  # the other site is whole
    assert "SiteBbzq" not in out.getvalue() and "All 1 audit chains are whole." in out.getvalue()
    with pytest.raises(CommandError) as missing:
        call_command("verify_audit", "--site", "999999", stdout=io.StringIO())
    assert missing.value.returncode == 2


def test_the_page_shows_whether_the_sites_trail_is_intact(world, signed_in):
    client = signed_in(Role.ADMIN)
    assert 'href="/audit/verify/"' in client.get("/audit/").content.decode()
    page = client.get("/audit/verify/").content.decode()
    count = AuditEntry.objects.filter(site=world.a.site).count()
    assert "The audit trail is intact." in page and f"{count} entries checked." in page
    assert AuditChain.objects.get(site=world.a.site).last_hash in page
    target = _of_site(world.a.site)[1]
    _sql("UPDATE audit_auditentry SET changes = %s WHERE id = %s", ['{"name": [null, "Forged"]}', target.pk])
    page = client.get("/audit/verify/").content.decode()
    assert f"The audit trail is broken at entry no. {target.seq}." in page and "hash mismatch" in page
    assert 'class="notice error" role="alert"' in page
    german = client.get("/audit/verify/", headers={"accept-language": "de"})
    assert german.status_code == 200


def test_the_page_shows_only_the_current_sites_chain(world, signed_in):
    """Broken chains of another site of the organisation, of another organisation and of the organisation's own
    entries do not show on site a's page, not even to a Super-admin; nor do their numbers."""
    for sw in (world.a2, world.b):
        entry = _record(sw.site, 1)[0]
        _sql("UPDATE audit_auditentry SET action = %s WHERE id = %s", ["forged", entry.pk])
    org_entry = AuditEntry.objects.filter(organization=world.org_a, site__isnull=True).first()
    _sql("UPDATE audit_auditentry SET action = %s WHERE id = %s", ["forged", org_entry.pk])
    count = AuditEntry.objects.filter(site=world.a.site).count()
    for role in (SUPER_ADMIN, Role.ADMIN):
        page = signed_in(role).get("/audit/verify/").content.decode()
        assert "The audit trail is intact." in page and f"{count} entries checked." in page
        assert AuditChain.objects.get(site=world.b.site).last_hash not in page


def test_the_page_is_for_readers_of_the_trail_only(world, signed_in):
    for role in (Role.LEAD, Role.MEMBER, Role.EMPLOYEE, Role.GUEST):
        assert signed_in(role).get("/audit/verify/").status_code == 403


def test_entries_written_before_the_chain_existed_are_chained_by_the_migration(world):
    """The data migration numbers and hashes existing entries per chain in the order they were written."""
    migration = importlib.import_module("rallypoint.audit.migrations.0005_chain_existing_entries")
    ids = list(AuditEntry.objects.order_by("id").values_list("id", flat=True))
    # As before the upgrade: no heads, nothing chained (numbers only made unique, as the columns demand).
    AuditChain.objects.all().delete()
    for n, pk in enumerate(ids):
        AuditEntry.objects.filter(pk=pk).update(seq=100_000 + n, prev_hash="", hash="", actor_ref=None)
    assert not all(r.ok for r in verify_all())
    migration.chain_existing(apps, None)
    reports = verify_all()
    assert reports and all(r.ok for r in reports), [(r.key, r.problem) for r in reports]
    assert sum(r.entries for r in reports) == len(ids)
    for site_chain in AuditChain.objects.filter(site__isnull=False):
        seqs = list(AuditEntry.objects.filter(site_id=site_chain.site_id).order_by("id").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1))


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_a_chain(world):
    """Two writers at once, each in its own transactions: every number is taken exactly once."""
    site = world.a.site
    start = threading.Barrier(2)
    errors = []

    def write(tag: str):
        try:
            start.wait(timeout=10)
            for n in range(15):
                with transaction.atomic():
                    record(actor=None, organization=site.organization, site=site, action=f"x.{tag}",
                           object_type="site", object_id=n)
                    # More work in the same transaction, after the head is taken: the other writer waits.
                    AuditEntry.objects.filter(site=site).count()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(tag,)) for tag in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    seqs = list(AuditEntry.objects.filter(site=site).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert AuditEntry.objects.filter(site=site, action__in=["x.one", "x.two"]).count() == 30
    report = verify_chain(site.organization_id, site.pk)
    assert report.ok and report.entries == len(seqs)
