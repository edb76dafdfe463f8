"""The access review's reminder to a site's administrators, as a kind of outbox message."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from rallypoint.accounts.messages import GONE, _language, _message
from rallypoint.notify.channels.base import Address
from rallypoint.notify.kinds import MessageKind, register
from rallypoint.people.models import AccessReview, Membership
from rallypoint.people.reviews import REMINDER
from rallypoint.tenants.roles import Role


@register
class AccessReviewReminder(MessageKind):
    name = REMINDER

    def prepare(self, deliveries):
        members = Membership.objects.select_related("user", "site").in_bulk(
            {d.membership_id for d in deliveries if d.membership_id})
        reviews = AccessReview.objects.in_bulk({(d.context or {}).get("review") for d in deliveries})
        result = {}
        for d in deliveries:
            admin, review = members.get(d.membership_id), reviews.get((d.context or {}).get("review"))
            if (admin is None or review is None or review.completed_at is not None or admin.role != Role.ADMIN
                    or not admin.is_active or not admin.signs_in or not admin.user.is_active):
                result[d.pk] = GONE  # done meanwhile, or no longer theirs to do
                continue
            with translation.override(_language(admin.user, d.context)), timezone.override(admin.site.time_zone):
                text = render_to_string("people/email/access_review.txt", {
                    "name": admin.full_name, "site": admin.site, "overdue": bool((d.context or {}).get("overdue")),
                    "due": formats.date_format(timezone.localtime(review.due_at), "DATE_FORMAT"),
                    "link": settings.BASE_URL + reverse("people:access_review")}).strip()
                subject = _("Access review for %(site)s") % {"site": admin.site.name}
                result[d.pk] = (_message(d, subject, text, site_id=admin.site_id), Address(email=admin.user.email))
        return result
