"""A person's own messenger addresses (Apprise URLs): added and removed in My account, each change audited.

An Apprise URL often carries a token of the messenger's bot or web hook: it is stored encrypted, never
logged, never shown again in full (the page shows the service and the label), and the audit trail names
only the service ("tgram").
"""

from __future__ import annotations

import apprise
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from rallypoint.audit.actions import record
from rallypoint.notify.models import ChannelMute, MessengerAddress
from rallypoint.people.models import Membership

MAX_ADDRESSES = 5


def service_of(url: str) -> str:
    """What the page may show of an address: the service's scheme ("tgram", "matrix"), nothing else."""
    return url.split("://", 1)[0] if "://" in url else "?"


def add_messenger_address(*, actor, membership: Membership, url: str, label: str) -> MessengerAddress:
    url, label = url.strip(), label.strip()
    if membership.user_id != actor.pk:
        raise ValidationError(_("Only the person can add their messenger addresses."))
    if apprise.Apprise.instantiate(url, asset=apprise.AppriseAsset(storage_mode="memory")) is None:
        raise ValidationError({"url": _("This is not an address Apprise knows, e.g. tgram://bottoken/ChatID.")})
    if MessengerAddress.objects.filter(membership=membership).count() >= MAX_ADDRESSES:
        raise ValidationError(_("At most %(n)d messenger addresses.") % {"n": MAX_ADDRESSES})
    with transaction.atomic():
        row = MessengerAddress.objects.create(site_id=membership.site_id, membership=membership, url=url,
                                              label=label[:120])
        record(actor=actor, organization=membership.site.organization, site=membership.site,
               action="messenger.added", object_type="person", object_id=membership.pk,
               changes={"messenger": [None, service_of(url)]})
    return row


def remove_messenger_address(*, actor, address: MessengerAddress) -> None:
    membership = address.membership
    if membership.user_id != actor.pk:
        raise ValidationError(_("Only the person can remove their messenger addresses."))
    with transaction.atomic():
        name = service_of(address.url)
        address.delete()
        record(actor=actor, organization=membership.site.organization, site=membership.site,
               action="messenger.removed", object_type="person", object_id=membership.pk,
               changes={"messenger": [name, None]})


#: The channels a person may mute for information messages (the app itself always shows them).
MUTABLE_CHANNELS = ("push", "email", "sms", "voice", "apprise")


def set_muted_channels(*, actor, membership: Membership, channels) -> list[str]:
    """The channels on which ``membership`` gets no information messages (alarms reach every channel)."""
    if actor is None or membership.user_id != actor.pk:
        raise PermissionDenied
    chosen = sorted(set(channels))
    if not set(chosen) <= set(MUTABLE_CHANNELS):
        raise ValidationError({"muted": _("Choose among the channels listed.")})
    with transaction.atomic():
        before = sorted(ChannelMute.objects.filter(membership=membership).values_list("channel", flat=True))
        if before == chosen:
            return chosen
        ChannelMute.objects.filter(membership=membership).exclude(channel__in=chosen).delete()
        ChannelMute.objects.bulk_create([ChannelMute(site=membership.site, membership=membership, channel=c)
                                         for c in chosen if c not in before])
        record(actor=actor, organization=membership.site.organization, site=membership.site,
               action="person.updated", object_type="person", object_id=membership.pk,
               changes={"muted_channels": [before, chosen]})
    return chosen
