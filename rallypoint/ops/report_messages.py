"""The monthly Art. 32 report to the data-protection officer, as a kind of outbox message: the counts and a
link; the page shows the evidence to whoever may see it."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from rallypoint.accounts.messages import GONE, _language, _message
from rallypoint.notify.channels.base import Address
from rallypoint.notify.kinds import MessageKind, register
from rallypoint.ops.tom_report import MONTHLY
from rallypoint.people.models import Membership


@register
class MonthlyReport(MessageKind):
    name = MONTHLY

    def prepare(self, deliveries):
        people = Membership.objects.select_related("user", "site__organization").in_bulk(
            {d.membership_id for d in deliveries if d.membership_id})
        result = {}
        for d in deliveries:
            person = people.get(d.membership_id)
            if person is None or not person.is_active or not person.signs_in or not person.user.is_active:
                result[d.pk] = GONE
                continue
            counts = d.context or {}
            with translation.override(_language(person.user, d.context)), timezone.override(person.site.time_zone):
                text = render_to_string("ops/email/tom_report.txt", {
                    "name": person.full_name, "organization": person.site.organization,
                    "met": counts.get("met", 0), "attention": counts.get("attention", 0),
                    "not_met": counts.get("not_met", 0), "link": settings.BASE_URL + reverse("report:report")}).strip()
                subject = _("Art. 32 report of %(org)s") % {"org": person.site.organization.name}
                result[d.pk] = (_message(d, subject, text, site_id=person.site_id), Address(email=person.user.email))
        return result
