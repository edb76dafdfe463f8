"""The audit trail (Eingabekontrolle): complete, field-level, no personal data in clear, admins only."""

from __future__ import annotations

from datetime import timedelta

from django.db import connection
from django.utils import timezone

from rallypoint.audit.actions import fingerprint, purge_expired
from rallypoint.audit.models import AuditEntry
from rallypoint.ops.scheduler import JOBS, ensure_job_rows, run_due_jobs
from rallypoint.tenants.roles import SUPER_ADMIN, Role

MARKERS = {"full_name": "Mxname-audit", "email": "mxmail-audit@example.org", "phone": "+49 111 222333",
           "department": "Mxdept-audit"}


def _raw_audit_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT changes, action, object_id FROM audit_auditentry")
        return " ".join(str(row) for row in cursor.fetchall())


def test_every_change_is_recorded_with_field_level_old_and_new(world, signed_in):
    client = signed_in(Role.ADMIN)
    client.post("/people/new/", {**MARKERS, "role": "guest"})
    entry = AuditEntry.objects.filter(action="person.created").latest("pk")
    assert entry.site == world.a.site and entry.actor == world.a.people[Role.ADMIN].user
    assert entry.changes["role"] == [None, "guest"]
    assert entry.changes["email"] == [None, fingerprint(MARKERS["email"])]
    assert abs((timezone.now() - entry.at).total_seconds()) < 60
    assert entry.at.utcoffset() == timedelta(0)
    membership_id = entry.object_id
    client.post(f"/people/{membership_id}/", {**MARKERS, "department": "Other", "role": "guest"})
    update = AuditEntry.objects.filter(action="person.updated").latest("pk")
    assert update.object_id == membership_id
    assert list(update.changes) == ["department"]
    assert update.changes["department"] == [fingerprint(MARKERS["department"]), fingerprint("Other")]


def test_personal_values_never_reach_the_trail_in_clear(world, signed_in):
    client = signed_in(Role.ADMIN)
    client.post("/people/new/", {**MARKERS, "role": "guest"})
    membership_id = AuditEntry.objects.filter(action="person.created").latest("pk").object_id
    changed = {k: v + "2" for k, v in MARKERS.items() if k != "email"}
    client.post(f"/people/{membership_id}/", {**MARKERS, **changed, "role": "member"})
    client.get("/people/export.csv")
    raw = _raw_audit_text()
    for value in [*MARKERS.values(), *changed.values()]:
        assert value not in raw
    page = client.get("/audit/").content.decode()
    assert MARKERS["email"] not in page and MARKERS["phone"] not in page


def test_structure_changes_are_recorded_too(world, signed_in):
    client = signed_in(SUPER_ADMIN)
    client.post("/groups/new/", {"name": "Wardens", "members": [world.a.people[Role.LEAD].pk]})
    client.post(f"/sites/{world.a.site.pk}/", {"name": "Renamed", "time_zone": "UTC"})
    client.post("/sites/new/", {"name": "Third", "time_zone": "Europe/Vienna"})
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"group.created", "site.updated", "site.created"} <= actions
    site_update = AuditEntry.objects.get(action="site.updated")
    assert site_update.changes == {"name": ["SiteAazq", "Renamed"], "time_zone": ["Europe/Berlin", "UTC"]}


def test_only_admins_and_super_admins_browse_the_trail(world, signed_in):
    for role in (SUPER_ADMIN, Role.ADMIN):
        assert signed_in(role).get("/audit/").status_code == 200
    for role in (Role.LEAD, Role.MEMBER, Role.EMPLOYEE, Role.GUEST):
        assert signed_in(role).get("/audit/").status_code == 403


def test_the_trail_can_be_filtered(world, signed_in):
    client = signed_in(Role.ADMIN)
    client.post("/groups/new/", {"name": "Filtered"})
    by_action = client.get("/audit/", {"action": "group.created"}).content.decode()
    assert "Filtered" in by_action and "Person added" not in by_action.split("<tbody>")[1]
    by_actor = client.get("/audit/", {"actor": world.a.people[Role.ADMIN].user_id}).content.decode()
    assert "Group created" in by_actor.split("<tbody>")[1]
    tomorrow = (timezone.localdate() + timedelta(days=2)).isoformat()
    empty = client.get("/audit/", {"since": tomorrow}).content.decode()
    assert "No entries match." in empty
    bad = client.get("/audit/", {"since": "not-a-date", "actor": "x"})
    assert bad.status_code == 200 and "No entries match." in bad.content.decode()


def test_entries_past_the_retention_period_are_purged_by_the_worker(world, settings):
    settings.AUDIT_RETENTION_DAYS = 90
    old = AuditEntry.objects.create(organization=world.org_a, site=world.a.site, action="x", object_type="site",
                                    object_id="1", at=timezone.now() - timedelta(days=91))
    recent = AuditEntry.objects.create(organization=world.org_a, site=world.a.site, action="x",
                                       object_type="site", object_id="1", at=timezone.now() - timedelta(days=89))
    ensure_job_rows()
    assert run_due_jobs("test-worker", {"audit.purge_expired": JOBS["audit.purge_expired"]}) == [
        "audit.purge_expired"]
    assert not AuditEntry.objects.filter(pk=old.pk).exists()
    assert AuditEntry.objects.filter(pk=recent.pk).exists()
    assert purge_expired(now=timezone.now() + timedelta(days=2)) == 1


def test_a_super_admin_also_sees_the_organisations_own_entries(world, signed_in):
    client = signed_in(SUPER_ADMIN)
    lead = world.a.people[Role.LEAD].user
    assert client.post("/super-admins/", {"email": lead.email}).status_code == 302
    body = client.get("/audit/", {"action": "role.granted"}).content.decode().split("<tbody>")[1]
    assert "Role granted" in body and "superadmin" in body
    admin_view = signed_in(Role.ADMIN).get("/audit/", {"action": "role.granted"}).content.decode()
    assert "superadmin" not in admin_view.split("<tbody>")[1]
