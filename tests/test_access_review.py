"""Access reviews: every RP_ACCESS_REVIEW_DAYS each site's administrators confirm who may sign in, with which
role, or remove the access; reminders go out through the outbox; every decision is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from rallypoint.accounts.mfa_models import TotpDevice
from rallypoint.audit.models import AuditEntry
from rallypoint.people import reviews
from rallypoint.people.models import AccessReview, AccessReviewEntry, Membership
from rallypoint.tenants.models import Site
from rallypoint.tenants.roles import SUPER_ADMIN, Role


@pytest.fixture
def aged(world, settings):
    """The sites were set up long enough ago for their first review to be due."""
    Site.objects.update(created_at=timezone.now() - timedelta(days=settings.ACCESS_REVIEW_DAYS + 1))
    return world


def _review(world) -> AccessReview:
    return AccessReview.objects.for_site(world.a.site).get()


def _entry(review, membership) -> AccessReviewEntry:
    return review.entries.get(membership=membership)


def test_the_job_opens_a_review_per_site_and_tells_its_administrators(aged, send_outbox):
    world = aged
    admin = world.a.people[Role.ADMIN]
    TotpDevice.objects.create(user=admin.user, secret="JBSWY3DPEHPK3PXP", confirmed=True)
    signed_in_at = timezone.now() - timedelta(days=3)
    admin.user.last_login = signed_in_at
    admin.user.save(update_fields=["last_login"])
    assert reviews.open_due_reviews() == Site.objects.count()
    review = _review(world)
    assert review.due_at - review.opened_at == timedelta(days=reviews.DAYS_TO_COMPLETE)
    signs_in = Membership.objects.for_site(world.a.site).active().filter(user__isnull=False)
    assert set(review.entries.values_list("membership_id", flat=True)) == set(signs_in.values_list("pk", flat=True))
    row = _entry(review, admin)
    assert (row.role, row.second_factor, row.last_sign_in) == (Role.ADMIN, True, signed_in_at)
    assert _entry(review, world.a.people[Role.EMPLOYEE]).second_factor is False
    send_outbox()
    to_a = [m for m in mail.outbox if m.to == [admin.user.email]]
    assert len(to_a) == 1 and "Access review for SiteAazq" in to_a[0].subject
    assert "/people/review/" in to_a[0].body
    assert not [m for m in mail.outbox if m.to == [world.a.people[Role.EMPLOYEE].user.email]]
    assert AuditEntry.objects.filter(site=world.a.site, action="access_review.opened").count() == 1


def test_a_review_comes_again_only_after_the_period(aged, settings):
    assert reviews.open_due_reviews() == 3
    assert reviews.open_due_reviews() == 0
    later = timezone.now() + timedelta(days=settings.ACCESS_REVIEW_DAYS + 1)
    assert reviews.open_due_reviews(later) == 3
    assert AccessReview.objects.for_site(aged.a.site).count() == 2


def test_a_new_site_gets_its_first_review_after_the_period(world, settings):
    assert reviews.open_due_reviews() == 0
    assert reviews.open_due_reviews(timezone.now() + timedelta(days=settings.ACCESS_REVIEW_DAYS + 1)) == 3


def test_an_overdue_review_reminds_once_more(aged, send_outbox):
    reviews.open_due_reviews()
    send_outbox()
    mail.outbox.clear()
    after_due = timezone.now() + timedelta(days=reviews.DAYS_TO_COMPLETE + 1)
    reviews.open_due_reviews(after_due)
    send_outbox()
    admin_mail = aged.a.people[Role.ADMIN].user.email
    overdue = [m for m in mail.outbox if m.to == [admin_mail]]
    assert len(overdue) == 1 and "overdue" in overdue[0].body
    mail.outbox.clear()
    reviews.open_due_reviews(after_due + timedelta(days=1))
    send_outbox()
    assert not [m for m in mail.outbox if m.to == [admin_mail]]


def test_an_admin_confirms_and_removes_access_and_the_last_decision_completes_it(aged, signed_in):
    world = aged
    reviews.open_due_reviews()
    review = _review(world)
    client = signed_in(Role.ADMIN)
    page = client.get("/people/review/").content.decode()
    assert "NameAaemployeezq" in page and "Remove access" in page
    guest = world.a.people[Role.GUEST]
    client.post(f"/people/review/{review.pk}/{_entry(review, guest).pk}/", {"decision": "removed"})
    guest.refresh_from_db()
    assert not guest.is_active
    employee = world.a.people[Role.EMPLOYEE]
    client.post(f"/people/review/{review.pk}/{_entry(review, employee).pk}/", {"decision": "confirmed"})
    assert _entry(review, employee).decision == "confirmed"
    assert _entry(review, employee).decided_by == world.a.people[Role.ADMIN].user
    review.refresh_from_db()
    assert review.completed_at is None
    client.post(f"/people/review/{review.pk}/confirm-rest/")
    review.refresh_from_db()
    assert review.completed_at is not None and review.completed_by == world.a.people[Role.ADMIN].user
    assert not review.entries.filter(decision="").exists()
    actions = list(AuditEntry.objects.filter(site=world.a.site, action__startswith="access_review.")
                   .values_list("action", flat=True))
    assert sorted(actions) == ["access_review.completed", "access_review.confirmed", "access_review.confirmed",
                               "access_review.opened", "access_review.removed"]
    assert AuditEntry.objects.filter(site=world.a.site, action="person.deactivated").exists()
    assert "was completed on" in client.get("/people/review/").content.decode()


def test_a_decision_is_made_once_and_a_super_admin_keeps_access(aged, signed_in):
    world = aged
    reviews.open_due_reviews()
    review = _review(world)
    client = signed_in(Role.ADMIN)
    employee = _entry(review, world.a.people[Role.EMPLOYEE])
    client.post(f"/people/review/{review.pk}/{employee.pk}/", {"decision": "confirmed"})
    page = client.post(f"/people/review/{review.pk}/{employee.pk}/", {"decision": "removed"},
                       follow=True).content.decode()
    assert "This has been decided already." in page
    assert Membership.objects.get(pk=employee.membership_id).is_active
    bad = client.post(f"/people/review/{review.pk}/{_entry(review, world.a.people[Role.LEAD]).pk}/",
                      {"decision": "maybe"}, follow=True).content.decode()
    assert "Confirm the access or remove it." in bad
    super_row = review.entries.filter(role=SUPER_ADMIN).first()
    assert super_row is not None  # the Super-admin of org A has a membership at site a
    refused = client.post(f"/people/review/{review.pk}/{super_row.pk}/", {"decision": "removed"},
                          follow=True).content.decode()
    assert "revoke the role on the organisation&#x27;s page" in refused
    assert Membership.objects.get(pk=super_row.membership_id).is_active


def test_only_administrators_review_and_only_their_own_site(aged, signed_in):
    world = aged
    reviews.open_due_reviews()
    for role in (Role.EMPLOYEE, Role.LEAD, Role.MEMBER, Role.GUEST):
        assert signed_in(role).get("/people/review/").status_code == 403
    client = signed_in(Role.ADMIN)
    foreign = AccessReview.objects.for_site(world.b.site).get()
    entry = foreign.entries.first()
    assert client.post(f"/people/review/{foreign.pk}/{entry.pk}/", {"decision": "removed"}).status_code == 404
    assert client.post(f"/people/review/{foreign.pk}/confirm-rest/").status_code == 404
    entry.refresh_from_db()
    assert entry.decision == "" and "NameBb" not in client.get("/people/review/").content.decode()


def test_an_admin_starts_a_review_before_it_is_due(world, signed_in):
    client = signed_in(Role.ADMIN)
    assert "No access review yet" in client.get("/people/review/").content.decode()
    client.post("/people/review/")
    review = _review(world)
    assert AuditEntry.objects.get(action="access_review.opened", site=world.a.site).actor == \
        world.a.people[Role.ADMIN].user
    assert review.entries.count() == Membership.objects.for_site(world.a.site).active().filter(
        user__isnull=False).count()
