"""Four-eyes: granting the Administrator role, deleting a person and exporting the people wait for a second
administrator, who approves or refuses; the requester can never approve their own request; everything is
audited; requests expire; a site without a second person has a recorded way through."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from rallypoint.accounts.mfa_models import OrganizationSecurity
from rallypoint.accounts.models import User
from rallypoint.audit import approvals
from rallypoint.audit.models import Approval, AuditEntry
from rallypoint.notify.models import Delivery
from rallypoint.people import actions as people
from rallypoint.people.models import Membership
from rallypoint.tenants import actions as tenants
from rallypoint.tenants.roles import Role


def _client(user, site) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session["rp_site_id"] = site.pk
    session.save()
    return client


def test_granting_administrator_waits_for_a_second_administrator(world):
    admin, employee = world.a.people[Role.ADMIN], world.a.people[Role.EMPLOYEE]
    data = {**people.person_state(employee), "role": Role.ADMIN}
    people.update_person(actor=admin.user, membership=employee, data=data)
    employee.refresh_from_db()
    assert employee.role == Role.EMPLOYEE  # not yet
    approval = Approval.objects.get(process="grant_admin", site=world.a.site)
    assert approval.subject == {"membership": employee.pk} and approval.state == "pending"
    told = Delivery.objects.filter(kind=approvals.ASK, context__approval=approval.pk)
    assert {d.membership.user_id for d in told} == {world.super_a.pk}  # the requester is not asked
    with pytest.raises(PermissionDenied):
        approvals.decide(approval=approval, approver=admin.user, approve=True)
    with pytest.raises(PermissionDenied):  # a lead may not approve either
        approvals.decide(approval=approval, approver=world.a.people[Role.LEAD].user, approve=True)
    approvals.decide(approval=approval, approver=world.super_a, approve=True, note="ok")
    employee.refresh_from_db()
    assert employee.role == Role.ADMIN
    approval.refresh_from_db()
    assert (approval.state, approval.decided_by) == ("done", world.super_a)
    actions = list(AuditEntry.objects.filter(object_type="approval", object_id=str(approval.pk)).order_by("seq")
                   .values_list("action", flat=True))
    assert actions == ["approval.requested", "approval.done"]
    assert AuditEntry.objects.filter(action="role.granted", object_id=str(employee.pk), actor=world.super_a).exists()


def test_deleting_a_person_is_asked_for_then_approved_through_the_page(world):
    admin, guest = world.a.people[Role.ADMIN], world.a.people[Role.GUEST]
    requester = _client(admin.user, world.a.site)
    response = requester.post(f"/people/{guest.pk}/delete/", {"reason": "left the company"})
    assert response.status_code == 302 and response["Location"] == "/audit/approvals/"
    assert Membership.objects.filter(pk=guest.pk).exists()
    approval = Approval.objects.get(process="delete_person")
    page = requester.get("/audit/approvals/").content.decode()
    assert "Waiting for a second administrator." in page and "NameAaguestzq" in page
    own = requester.post(f"/audit/approvals/{approval.pk}/decide/", {"decision": "approve"}, follow=True)
    assert "You cannot approve your own request." in own.content.decode()
    assert Membership.objects.filter(pk=guest.pk).exists()

    second = _client(world.super_a, world.a.site)
    assert "left the company" in second.get("/audit/approvals/").content.decode()
    done = second.post(f"/audit/approvals/{approval.pk}/decide/", {"decision": "approve"}, follow=True)
    assert "Approved and carried out." in done.content.decode()
    assert not Membership.objects.filter(pk=guest.pk).exists()
    assert Membership.records.get(pk=guest.pk).kind == "forgotten"
    assert not User.objects.filter(pk=guest.user_id).exists()


def test_a_refused_or_expired_request_changes_nothing(world):
    admin, guest = world.a.people[Role.ADMIN], world.a.people[Role.GUEST]
    from rallypoint.people import forget

    refused = forget.request_deletion(actor=admin.user, membership=guest, reason="")
    approvals.decide(approval=refused, approver=world.super_a, approve=False)
    late = forget.request_deletion(actor=admin.user, membership=guest, reason="")
    assert approvals.expire_due(timezone.now() + timedelta(hours=23)) == 0
    assert approvals.expire_due(timezone.now() + timedelta(hours=25)) == 1
    late.refresh_from_db()
    assert late.state == "expired"
    with pytest.raises(Exception, match="already decided"):
        approvals.decide(approval=late, approver=world.super_a, approve=True)
    assert Membership.objects.get(pk=guest.pk).is_active


def test_an_approved_export_downloads_once(world):
    requester = _client(world.a.people[Role.ADMIN].user, world.a.site)
    assert requester.get("/people/export.csv").status_code == 302
    assert not Approval.objects.exists()  # a link followed asks for nothing: the button posts
    assert requester.post("/people/export.csv").status_code == 302
    approval = Approval.objects.get(process="export_people")
    assert requester.get(f"/people/export/{approval.pk}.csv").status_code == 302  # not approved yet: no file
    approvals.decide(approval=approval, approver=world.super_a, approve=True)
    first = requester.get(f"/people/export/{approval.pk}.csv")
    assert first.status_code == 200 and b"NameAaguestzq" in first.content
    assert requester.get(f"/people/export/{approval.pk}.csv").status_code == 302  # once
    other = _client(world.super_a, world.a.site)
    assert other.get(f"/people/export/{approval.pk}.csv").status_code == 403  # only the requester's


def test_an_organisation_chooses_its_processes_but_granting_administrator_stays(world):
    admin, guest = world.a.people[Role.ADMIN], world.a.people[Role.GUEST]
    assert _client(admin.user, world.a.site).post("/audit/approvals/processes/", {}).status_code == 403
    response = _client(world.super_a, world.a.site).post("/audit/approvals/processes/", {"process": ["export_people"]})
    assert response.status_code == 302
    assert OrganizationSecurity.objects.get(organization=world.org_a).four_eyes == ["export_people", "grant_admin"]
    assert AuditEntry.objects.filter(action="four_eyes.changed").exists()
    world.org_a.refresh_from_db()
    response = _client(admin.user, world.a.site).post(f"/people/{guest.pk}/delete/", {"reason": ""})
    assert response.status_code == 302 and response["Location"] == "/people/"
    assert not Membership.objects.filter(pk=guest.pk).exists()  # at once
    employee = world.a.people[Role.EMPLOYEE]
    people.update_person(actor=admin.user, membership=employee,
                         data={**people.person_state(employee), "role": Role.ADMIN})
    employee.refresh_from_db()
    assert employee.role == Role.EMPLOYEE and Approval.objects.filter(process="grant_admin").exists()


def test_a_site_with_a_single_administrator_carries_it_out_alone_and_it_is_flagged(db):
    organization = tenants.create_organization(name="Tiny")
    OrganizationSecurity.objects.create(organization=organization,
                                        second_factor=OrganizationSecurity.SecondFactor.OPTIONAL)
    site = tenants.create_site(actor=None, organization=organization, name="Only site")
    admin = Membership.objects.create(site=site, user=User.objects.create_user("only@example.org"), role=Role.ADMIN,
                                      full_name="Only Admin")
    helper = Membership.objects.create(site=site, user=User.objects.create_user("helper@example.org"),
                                       role=Role.EMPLOYEE, full_name="Helper")
    people.update_person(actor=admin.user, membership=helper, data={**people.person_state(helper), "role": Role.ADMIN})
    approval = Approval.objects.get(process="grant_admin")
    assert approvals.approvers(approval) == []
    page = _client(admin.user, site).get("/audit/approvals/").content.decode()
    assert "No one else can approve: carry it out alone" in page
    approvals.carry_out_alone(approval=approval, actor=admin.user)
    approval.refresh_from_db()
    assert (approval.state, approval.without_second_person) == ("done", True)
    helper.refresh_from_db()
    assert helper.role == Role.ADMIN
    # Now there is a second administrator: the next request cannot be carried out alone.
    other = Membership.objects.create(site=site, user=User.objects.create_user("third@example.org"),
                                      role=Role.EMPLOYEE, full_name="Third")
    people.update_person(actor=admin.user, membership=other, data={**people.person_state(other), "role": Role.ADMIN})
    with pytest.raises(Exception, match="Someone else can approve"):
        approvals.carry_out_alone(approval=Approval.objects.get(subject={"membership": other.pk}), actor=admin.user)


def test_another_sites_requests_are_out_of_reach(world):
    guest = world.a.people[Role.GUEST]
    from rallypoint.people import forget

    approval = forget.request_deletion(actor=world.a.people[Role.ADMIN].user, membership=guest, reason="")
    stranger = _client(world.b.people[Role.ADMIN].user, world.b.site)
    assert approval.pk not in [a for a in stranger.get("/audit/approvals/").context["open"]]
    assert stranger.post(f"/audit/approvals/{approval.pk}/decide/", {"decision": "approve"}).status_code == 404
    assert Membership.objects.filter(pk=guest.pk).exists()


def _all_under_four_eyes(world) -> None:
    OrganizationSecurity.objects.filter(organization=world.org_a).update(four_eyes=None)  # the default: all
    world.org_a.refresh_from_db()


def test_the_organisations_own_processes_wait_for_a_second_super_admin(world):
    from rallypoint.accounts import mfa
    from rallypoint.tenants.models import Site, SuperAdmin

    _all_under_four_eyes(world)
    second = world.a.people[Role.LEAD].user
    tenants.grant_super_admin(actor=None, organization=world.org_a, user=second)
    first = _client(world.super_a, world.a.site)
    employee = world.a.people[Role.EMPLOYEE].user
    assert first.post("/super-admins/", {"email": employee.email})["Location"] == "/audit/approvals/"
    first.post("/accounts/second-factor/policy/", {"second_factor": "everyone"})  # a fresh sign-in: may change it
    first.post(f"/sites/{world.a2.site.pk}/delete/", {"confirm_name": world.a2.site.name})
    assert not SuperAdmin.objects.filter(user=employee).exists() and Site.objects.filter(pk=world.a2.site.pk).exists()
    pending = Approval.objects.filter(state="pending", site=None)
    assert set(pending.values_list("process", flat=True)) >= {"grant_super_admin", "delete_site"}
    page = _client(second, world.a.site).get("/audit/approvals/").content.decode()
    assert world.a2.site.name in page and "NameAaemployeezq" in page
    for approval in pending:
        with pytest.raises(PermissionDenied):
            approvals.decide(approval=approval, approver=world.super_a, approve=True)  # not one's own
        with pytest.raises(PermissionDenied):
            approvals.decide(approval=approval, approver=world.a.people[Role.ADMIN].user, approve=True)  # no admin
        approvals.decide(approval=approval, approver=second, approve=True)
    assert SuperAdmin.objects.filter(user=employee, organization=world.org_a).exists()
    assert not Site.objects.filter(pk=world.a2.site.pk).exists()
    if Approval.objects.filter(process="second_factor_rule").exists():
        assert mfa.policy_of(world.org_a) == "everyone"


def test_a_key_that_may_raise_alarms_works_only_once_approved(world):
    from rallypoint.integrations.actions import authenticate_api_key, create_api_key
    from tests.alarm_fixtures import fire_scenario

    _all_under_four_eyes(world)
    fire = fire_scenario(world.a.site)
    key, raw = create_api_key(actor=world.a.people[Role.ADMIN].user, site=world.a.site, name="Panel", scenarios=[fire])
    assert authenticate_api_key(raw) is None  # not yet
    approvals.decide(approval=key.pending_approval, approver=world.super_a, approve=True)
    assert authenticate_api_key(raw) == key
    presence_only, raw2 = create_api_key(actor=world.a.people[Role.ADMIN].user, site=world.a.site, name="Doors",
                                         scenarios=[], reports_presence=True)
    assert authenticate_api_key(raw2) == presence_only  # raises no alarm: no second person needed


def test_a_lost_second_factor_is_reset_after_a_second_administrator_approves(world):
    from rallypoint.accounts.mfa_models import TotpDevice
    from rallypoint.accounts.models import UserSession

    employee = world.a.people[Role.EMPLOYEE]
    TotpDevice.objects.create(user=employee.user, secret="JBSWY3DPEHPK3PXP", confirmed=True)
    phone = Client()
    phone.force_login(employee.user)
    requester = _client(world.a.people[Role.ADMIN].user, world.a.site)
    assert "Reset second factor" in requester.get(f"/people/{employee.pk}/").content.decode()
    assert requester.post(f"/people/{employee.pk}/second-factor/reset/")["Location"] == "/audit/approvals/"
    assert TotpDevice.objects.filter(user=employee.user).exists()
    approvals.decide(approval=Approval.objects.get(process="reset_second_factor"), approver=world.super_a,
                     approve=True)
    assert not TotpDevice.objects.filter(user=employee.user).exists()
    assert not UserSession.objects.filter(user=employee.user).exists()  # signed out everywhere
    again = requester.post(f"/people/{employee.pk}/second-factor/reset/", follow=True)
    assert "This person has no second factor." in again.content.decode()
