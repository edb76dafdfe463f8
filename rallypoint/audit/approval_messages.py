"""The request for a second person's approval (four-eyes), as a kind of outbox message. It names the process
and the site, never the person concerned: the page shows that to whoever may see it."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from rallypoint.accounts.messages import GONE, _language, _message
from rallypoint.audit.approvals import ASK
from rallypoint.audit.models import Approval
from rallypoint.notify.channels.base import Address
from rallypoint.notify.kinds import MessageKind, register
from rallypoint.people.models import Membership


@register
class ApprovalRequest(MessageKind):
    name = ASK

    def prepare(self, deliveries):
        members = Membership.objects.select_related("user", "site").in_bulk(
            {d.membership_id for d in deliveries if d.membership_id})
        asked = Approval.objects.in_bulk({(d.context or {}).get("approval") for d in deliveries})
        result = {}
        for d in deliveries:
            person, approval = members.get(d.membership_id), asked.get((d.context or {}).get("approval"))
            if (person is None or approval is None or approval.state != Approval.State.PENDING
                    or not person.is_active or not person.signs_in or not person.user.is_active):
                result[d.pk] = GONE  # decided meanwhile, or no longer theirs to decide
                continue
            with translation.override(_language(person.user, d.context)), timezone.override(person.site.time_zone):
                text = render_to_string("audit/email/approval.txt", {
                    "name": person.full_name, "site": person.site, "process": approval.get_process_display(),
                    "expires": formats.date_format(timezone.localtime(approval.expires_at), "SHORT_DATETIME_FORMAT"),
                    "link": settings.BASE_URL + reverse("audit:approvals")}).strip()
                subject = _("Approval needed at %(site)s") % {"site": person.site.name}
                result[d.pk] = (_message(d, subject, text, site_id=person.site_id), Address(email=person.user.email))
        return result
