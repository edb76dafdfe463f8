"""Access reviews: every ``RP_ACCESS_REVIEW_DAYS`` each site's administrators confirm who may sign in, with
which role, or remove the access.

The job ``access_review.open_due`` (daily) opens a review for each site whose last one (or whose setting
up) is that old, with an entry per person who can sign in (their role, whether they have a second factor,
their last sign-in), and tells the site's administrators by e-mail through the outbox; a review still open
after :data:`DAYS_TO_COMPLETE` days is overdue, and they are told once more. Every decision is an audit entry;
removing access deactivates the person at the site (the usual, audited action).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from rallypoint.accounts.mfa_models import Passkey, TotpDevice
from rallypoint.audit.actions import record
from rallypoint.notify import outbox
from rallypoint.people.actions import set_people_active
from rallypoint.people.models import AccessReview, AccessReviewEntry, Membership
from rallypoint.tenants.models import Site, SuperAdmin
from rallypoint.tenants.roles import SUPER_ADMIN, Perm, Role
from rallypoint.tenants.scoping import require_perm

#: A review is due this many days after it opened; then it is overdue.
DAYS_TO_COMPLETE = 14
#: The kind of the reminder message (rendered in rallypoint.people.review_messages).
REMINDER = "people.access_review"


def _who_signs_in(site: Site):
    return (Membership.objects.for_site(site).active().filter(user__isnull=False)
            .select_related("user").annotate(
                totp=Exists(TotpDevice.objects.filter(user=OuterRef("user_id"), confirmed=True)),
                passkey=Exists(Passkey.objects.filter(user=OuterRef("user_id")))))


def open_review(site: Site, *, actor=None, now=None) -> AccessReview:
    """A new review of ``site`` with an entry per person who can sign in now; its administrators are told.
    ``actor``: an administrator who started it before it was due (the job starts the others)."""
    if actor is not None:
        require_perm(actor, site, Perm.MANAGE_PEOPLE)
    now = now or timezone.now()
    super_admins = set(SuperAdmin.objects.filter(organization_id=site.organization_id).values_list("user_id",
                                                                                                  flat=True))
    with transaction.atomic():
        review = AccessReview.objects.create(site=site, opened_at=now, due_at=now + timedelta(days=DAYS_TO_COMPLETE))
        entries = AccessReviewEntry.objects.bulk_create([
            AccessReviewEntry(site=site, review=review, membership=m,
                              role=SUPER_ADMIN if m.user_id in super_admins else m.role,
                              second_factor=m.totp or m.passkey, last_sign_in=m.user.last_login)
            for m in _who_signs_in(site)])
        record(actor=actor, organization=site.organization, site=site, action="access_review.opened",
               object_type="access_review", object_id=review.pk, changes={"entries": [None, len(entries)]})
        _remind(review, now)
    return review


def _remind(review: AccessReview, now) -> int:
    admins = Membership.objects.for_site(review.site_id).alertable().filter(role=Role.ADMIN)
    for admin in admins:
        outbox.queue(REMINDER, site=review.site, membership=admin,
                     context={"review": review.pk, "overdue": review.is_overdue(now)})
    AccessReview.objects.filter(pk=review.pk).update(reminded_at=now)
    return len(admins)


def open_due_reviews(now=None) -> int:
    """The daily job: open a review for every site whose last one opened ``RP_ACCESS_REVIEW_DAYS`` ago or
    that has none; remind once more of every review that became overdue. Returns the reviews opened."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.ACCESS_REVIEW_DAYS)
    recent = AccessReview.objects.filter(site=OuterRef("pk"), opened_at__gt=since)
    opened = 0
    # A new site's first review comes RP_ACCESS_REVIEW_DAYS after it was set up, not on its first day.
    for site in Site.objects.select_related("organization").filter(~Exists(recent), created_at__lte=since):
        open_review(site, now=now)
        opened += 1
    # Overdue, and last reminded before it became due: the overdue reminder has not gone out yet.
    for review in AccessReview.objects.select_related("site").filter(completed_at__isnull=True, due_at__lt=now,
                                                                     reminded_at__lt=F("due_at")):
        with transaction.atomic():
            _remind(review, now)
    return opened


def decide(*, actor, entry: AccessReviewEntry, decision: str) -> AccessReviewEntry:
    """Confirm a person's access or remove it (deactivating them at the site); the last decision completes
    the review."""
    review = entry.review
    require_perm(actor, review.site, Perm.MANAGE_PEOPLE)
    if decision not in AccessReviewEntry.Decision.values:
        raise ValidationError(_("Confirm the access or remove it."))
    if review.completed_at is not None or entry.decision:
        raise ValidationError(_("This has been decided already."))
    if decision == AccessReviewEntry.Decision.REMOVED and entry.role == SUPER_ADMIN:
        raise ValidationError(_("A Super-admin keeps access to every site of the organisation: revoke the role on "
                                "the organisation's page."))
    if decision == AccessReviewEntry.Decision.REMOVED and entry.membership.user_id == actor.pk:
        raise PermissionDenied
    now = timezone.now()
    with transaction.atomic():
        entry.decision, entry.decided_by, entry.decided_at = decision, actor, now
        entry.save(update_fields=["decision", "decided_by", "decided_at"])
        if decision == AccessReviewEntry.Decision.REMOVED:
            set_people_active(actor=actor, site=review.site, memberships=[entry.membership], active=False)
        record(actor=actor, organization=review.site.organization, site=review.site,
               action=f"access_review.{decision}", object_type="person", object_id=entry.membership_id,
               changes={"role": [None, entry.role]})
        _complete_if_done(review, actor, now)
    return entry


def confirm_rest(*, actor, review: AccessReview) -> int:
    """Confirm every entry not decided yet (the reviewer has looked through the list)."""
    require_perm(actor, review.site, Perm.MANAGE_PEOPLE)
    if review.completed_at is not None:
        raise ValidationError(_("This has been decided already."))
    now = timezone.now()
    with transaction.atomic():
        rest = list(review.entries.filter(decision=""))
        AccessReviewEntry.objects.filter(pk__in=[e.pk for e in rest]).update(
            decision=AccessReviewEntry.Decision.CONFIRMED, decided_by=actor, decided_at=now)
        if rest:
            record(actor=actor, organization=review.site.organization, site=review.site,
                   action="access_review.confirmed", object_type="access_review", object_id=review.pk,
                   changes={"people": [None, sorted(e.membership_id for e in rest)]})
        _complete_if_done(review, actor, now)
    return len(rest)


def _complete_if_done(review: AccessReview, actor, now) -> None:
    if review.entries.filter(decision="").exists():
        return
    review.completed_at, review.completed_by = now, actor
    review.save(update_fields=["completed_at", "completed_by"])
    record(actor=actor, organization=review.site.organization, site=review.site, action="access_review.completed",
           object_type="access_review", object_id=review.pk, changes={})
