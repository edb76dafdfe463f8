"""The audit trail (Eingabekontrolle): complete, field-level, no personal data in clear, admins only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from rallypoint.accounts import mfa
from rallypoint.alarms import actions as alarms
from rallypoint.alarms.models import Scenario
from rallypoint.audit import approvals, presentation
from rallypoint.audit.actions import fingerprint, purge_expired, record_many
from rallypoint.audit.models import Approval, AuditEntry
from rallypoint.integrations.actions import create_api_key, record_api_key_use, revoke_api_key, rotate_api_key
from rallypoint.ops.scheduler import JOBS, ensure_job_rows, run_due_jobs
from rallypoint.people import forget
from rallypoint.people.models import Membership
from rallypoint.tenants import actions as tenant_actions
from rallypoint.tenants.roles import SUPER_ADMIN, Role
from tests.alarm_fixtures import fire_scenario

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
    client.post("/people/export.csv")  # four-eyes requests and a deletion write entries too: none in clear
    approvals.decide(approval=Approval.objects.get(process="export_people"), approver=world.super_a, approve=True)
    client.post(f"/people/{world.a.people[Role.GUEST].pk}/delete/", {"reason": "left"})
    approvals.decide(approval=Approval.objects.get(process="delete_person"), approver=world.super_a, approve=False)
    client.post(f"/people/{world.a.people[Role.GUEST].pk}/delete/", {"reason": "left"})
    approvals.expire_due(timezone.now() + timedelta(days=2))
    forget.forget_person(membership=world.a.people[Role.MEMBER], actor=None, why="asked")
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
    old, recent = record_many([
        AuditEntry(organization=world.org_a, site=world.a.site, action="x", object_type="site", object_id="1",
                   at=timezone.now() - timedelta(days=days)) for days in (91, 89)])
    ensure_job_rows()
    assert run_due_jobs("test-worker", {"personal_data.purge": JOBS["personal_data.purge"]}) == [
        "personal_data.purge"]
    assert not AuditEntry.objects.filter(pk=old.pk).exists()
    assert AuditEntry.objects.filter(pk=recent.pk).exists()
    assert purge_expired(now=timezone.now() + timedelta(days=2)) == 1


def test_a_super_admin_also_sees_the_organisations_own_entries(world, signed_in):
    client = signed_in(SUPER_ADMIN)
    lead = world.a.people[Role.LEAD].user
    assert client.post("/super-admins/", {"email": lead.email}).status_code == 302
    body = client.get("/audit/", {"action": "role.granted"}).content.decode().split("<tbody>")[1]
    assert "Role granted" in body and "<strong>Role</strong>: Super-admin" in body
    assert world.a.people[Role.LEAD].full_name in body  # the object: the person, by name
    admin_view = signed_in(Role.ADMIN).get("/audit/", {"action": "role.granted"}).content.decode()
    assert "Super-admin" not in admin_view.split("<tbody>")[1]


def _changes(page: str) -> list[str]:
    """The audit page's changes as a reader sees them, one line per change."""
    items = re.findall(r'<ul class="changes">(.*?)</ul>', page, re.S)
    return [re.sub(r"<[^>]+>", "", li).strip() for ul in items for li in re.findall(r"<li>(.*?)</li>", ul, re.S)]


@pytest.fixture
def busy_site(world, signed_in):
    """Site a after a morning's work: a person added, promoted and deactivated, a group, a scenario with a
    level, an alarm raised on the web and ended."""
    client = signed_in(Role.ADMIN)
    client.post("/people/new/", {**MARKERS, "role": "employee"})
    person = Membership.objects.filter(site=world.a.site).order_by("-pk")[0]
    client.post(f"/people/{person.pk}/", {**MARKERS, "role": "member"})
    client.post("/groups/new/", {"name": "Wardens", "members": [world.a.people[Role.LEAD].pk, person.pk]})
    client.post(f"/people/{person.pk}/activation/")
    scenario = fire_scenario(world.a.site)
    level = scenario.levels.get(name="Evacuate")
    client.post(f"/scenarios/{scenario.pk}/levels/{level.pk}/", {
        "name": "Evacuate", "position": "2", "recipient_groups": [world.a.group.pk], "channels": ["inapp", "push"],
        "requires_acceptance": "on", "escalate_below": "0", "escalate_after_seconds": "120", "escalation": ""})
    lead = world.a.people[Role.LEAD].user
    alarm, _created = alarms.trigger_alarm(site=world.a.site, scenario=scenario, user=lead)
    alarms.end_alarm(user=lead, alarm=alarm, reason="Drill over")
    return client, person


def test_the_trail_reads_in_words_not_internal_names(world, busy_site):
    client, person = busy_site
    page = client.get("/audit/").content.decode()
    changes = _changes(page)
    lead = world.a.people[Role.LEAD]
    for expected in ("Role: Employee → Crisis-team member", "Active: yes → no", "Support account: yes",
                     "State: Active → Ended", "Raised through: Web app", "Reason: Drill over",
                     f"Members: {MARKERS['full_name']}, {lead.full_name}",
                     "Level “Evacuate” · Channels: App (live), E-mail → App (live), Push notification",
                     "Level “Evacuate” · Groups alerted: GroupAazq",
                     f"Name: {fingerprint(MARKERS['full_name'])}"):
        assert expected in changes, (expected, "\n".join(changes))
    body = page.split("<tbody>")[1]
    for internal in ("full_name", "support_account", ": employee", "→ member", "source", ": web", "active →",
                     "level#", "inapp", f"#{lead.pk},", "<code>"):
        assert internal not in body, internal
    german = _changes(client.get("/audit/", headers={"accept-language": "de"}).content.decode())
    for expected in ("Rolle: Beschäftigte → Krisenstabsmitglied", "Aktiv: ja → nein", "Support-Konto: ja",
                     "Zustand: Aktiv → Beendet", "Ausgelöst über: Web-App",
                     f"Mitglieder: {MARKERS['full_name']}, {lead.full_name}",
                     "Stufe „Evacuate“ · Kanäle: App (live), E-Mail → App (live), Push-Benachrichtigung"):
        assert expected in german, (expected, german)


def test_names_of_people_only_for_readers_who_may_see_personal_data(world, busy_site):
    wardens = world.a.site.groups.get(name="Wardens")
    entries = list(AuditEntry.objects.filter(site=world.a.site, object_type="group", object_id=str(wardens.pk)))
    lead = world.a.people[Role.LEAD]
    shown = presentation.look_up_names(world.a.site, entries, show_people=True)
    hidden = presentation.look_up_names(world.a.site, entries, show_people=False)
    [members] = [c for e in entries for c in presentation.changes_of(e, shown) if c.label == "Members"]
    assert lead.full_name in members.new
    [members] = [c for e in entries for c in presentation.changes_of(e, hidden) if c.label == "Members"]
    assert lead.full_name not in members.new and f"Person #{lead.pk}" in members.new
    # Another site's people are never named, whoever reads.
    foreign = presentation.look_up_names(world.b.site, entries, show_people=True)
    assert lead.full_name not in str([c.new for e in entries for c in presentation.changes_of(e, foreign)])


def test_every_field_the_trail_holds_has_a_label(world, busy_site, settings):
    """Everything the actions write reads in words; a new field without a label fails here."""
    client, person = busy_site
    scenario = Scenario.objects.get(site=world.a.site, name="Fire")
    client.post(f"/scenarios/{scenario.pk}/", {
        "name": "Fire", "category": "alarm", "priority": "1", "color": "#1d4ed8", "icon": "gas", "sound": "gong",
        "message_template": "Gas at {location}.", "instruction_lead": "Call.", "trigger_roles": ["lead"],
        "trigger_groups": [world.a.group.pk], "allow_drill": "on", "quick": "on", "is_active": "on"})
    client.post(f"/scenarios/{scenario.pk}/questions/new/", {"text": "Smoke?", "position": "1", "answer_1": "No"})
    client.post(f"/scenarios/{scenario.pk}/documents/", {"title": "Plan", "file": SimpleUploadedFile(
        "plan.pdf", b"%PDF-1.7\n%%EOF\n", content_type="application/pdf")})
    pre = scenario.levels.get(name="Pre-alarm")
    evacuate = scenario.levels.get(name="Evacuate")
    client.post(f"/scenarios/{scenario.pk}/levels/{pre.pk}/", {
        "name": "Pre-alarm", "position": "1", "recipient_people": [world.a.people[Role.LEAD].pk],
        "channels": ["inapp"], "requires_acceptance": "on", "escalate_below": "2", "escalate_after_seconds": "60",
        "escalation": "raise_level", "escalate_to_level": evacuate.pk, "escalate_channels": ["sms"],
        "escalate_to_group": world.a.group.pk})
    key, _raw = create_api_key(actor=world.a.people[Role.ADMIN].user, site=world.a.site, name="Panel",
                               scenarios=[scenario])
    rotate_api_key(actor=None, key=key)
    alarm, _created = alarms.trigger_alarm(site=world.a.site, scenario=scenario, api_key=key, source="api")
    record_api_key_use(key, action="trigger", alarm_id=alarm.pk, replayed=False)
    alarms.update_alarm(user=None, alarm=alarm, note="Hall 2", location_text="Gate")
    alarms.raise_level(user=None, alarm=alarm, level=evacuate)
    revoke_api_key(actor=None, key=key)
    client.post(f"/sites/{world.a.site.pk}/", {"name": "Renamed", "time_zone": "UTC"})
    client.get("/people/export.csv")
    client.post("/people/export.csv")  # four-eyes: a request, approved; a deletion, refused; one expired
    approvals.decide(approval=Approval.objects.get(process="export_people"), approver=world.super_a, approve=True)
    client.post(f"/people/{world.a.people[Role.GUEST].pk}/delete/", {"reason": "left"})
    approvals.decide(approval=Approval.objects.get(process="delete_person"), approver=world.super_a, approve=False)
    client.post(f"/people/{world.a.people[Role.GUEST].pk}/delete/", {"reason": "left"})
    approvals.expire_due(timezone.now() + timedelta(days=2))
    forget.forget_person(membership=world.a.people[Role.MEMBER], actor=None, why="asked")
    approvals.set_processes(organization=world.org_a, processes=["export_people"], actor=world.super_a)
    mfa.set_policy(organization=world.org_a, value="everyone", actor=None)
    tenant_actions.grant_super_admin(actor=None, organization=world.org_a, user=world.a.people[Role.LEAD].user)
    support = Membership.objects.get(site=world.a.site, user__is_support=True)
    client.post(f"/people/{support.pk}/delete/")
    entries = list(AuditEntry.objects.filter(organization=world.org_a))
    kinds = {e.object_type for e in entries}
    assert {"person", "user", "site", "group", "organization", "scenario", "alarm", "api_key"} <= kinds
    assert presentation.unlabelled_fields(entries) == set()
    for entry in entries:  # and every value reads without an error
        presentation.changes_of(entry, presentation.look_up_names(world.a.site, [entry], show_people=True))
