"""The account e-mails (invitation, password link, access to another site) as kinds of outbox messages.

They are queued by the actions and views (:func:`rallypoint.notify.outbox.queue`) and rendered here, by
the worker, when they go out: the password link is made at that moment, so that a message retried after a
failure carries a working link, and no link ever lies in the database.
"""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from rallypoint.accounts.models import User
from rallypoint.accounts.tokens import issue_password_link
from rallypoint.audit.actions import home_organization
from rallypoint.audit.models import SecurityEvent
from rallypoint.notify.channels.base import Address, Message, TransportError
from rallypoint.notify.kinds import MessageKind, register
from rallypoint.people.models import Membership

INVITATION = "account.invitation"
PASSWORD_RESET = "account.password_reset"  # nosec B105 - the name of a kind of message, no password
SITE_ACCESS = "account.site_access"
GONE = TransportError("the person or account is no longer active", permanent=True)


def _language(user: User, context: dict | None) -> str:
    return user.language or (context or {}).get("language") or settings.LANGUAGE_CODE


def _message(delivery, subject: str, text: str, *, site_id: int | None = None) -> Message:
    return Message(delivery_key=str(delivery.key), alarm_id=0, site_id=site_id or 0, event=delivery.kind,
                   subject=subject, text=text, short="", html="", url=settings.BASE_URL, priority=3,
                   language=translation.get_language())


class _ToMembers(MessageKind):
    """Messages to a person at a site, about that site."""

    template = ""

    def subject(self, membership: Membership) -> str:
        return _("Your Rallypoint access for %(site)s") % {"site": membership.site.name}

    def link(self, membership: Membership) -> str:
        raise NotImplementedError

    def prepare(self, deliveries):
        members = Membership.objects.select_related("user", "site").in_bulk(
            {d.membership_id for d in deliveries if d.membership_id})
        result = {}
        for d in deliveries:
            membership = members.get(d.membership_id)
            if membership is None or not membership.signs_in or not (membership.is_active
                                                                    and membership.user.is_active):
                result[d.pk] = GONE
                continue
            user = membership.user
            with translation.override(_language(user, d.context)):
                text = render_to_string(self.template, {"site": membership.site, "name": membership.full_name,
                                                        "link": self.link(membership)}).strip()
                result[d.pk] = (_message(d, self.subject(membership), text, site_id=membership.site_id),
                                Address(email=user.email))
        return result


@register
class Invitation(_ToMembers):
    name = INVITATION
    template = "accounts/email/invitation.txt"

    def link(self, membership: Membership) -> str:
        return issue_password_link(membership.user)


@register
class SiteAccess(_ToMembers):
    """Someone who already has an account (from another organisation) was given access to a site: they
    sign in with it. Their password is not the inviting organisation's to set."""

    name = SITE_ACCESS
    template = "accounts/email/site_access.txt"

    def link(self, membership: Membership) -> str:
        return settings.BASE_URL + reverse("accounts:login")


@register
class PasswordReset(MessageKind):
    name = PASSWORD_RESET

    def prepare(self, deliveries):
        users = User.objects.in_bulk({d.user_id for d in deliveries if d.user_id})
        result = {}
        for d in deliveries:
            user = users.get(d.user_id)
            if user is not None:  # the request left this to the worker, so that it took no longer for them
                SecurityEvent.objects.filter(pk=(d.context or {}).get("event"), user=user, organization=None).update(
                    organization=home_organization(user))
            if user is None or not user.is_active or not user.memberships.filter(is_active=True).exists():
                result[d.pk] = GONE
                continue
            with translation.override(_language(user, d.context)):
                subject = _("Set a new Rallypoint password")
                text = render_to_string("accounts/email/reset.txt", {"link": issue_password_link(user)}).strip()
                result[d.pk] = (_message(d, subject, text), Address(email=user.email))
        return result
