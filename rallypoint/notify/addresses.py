"""A person's own messenger addresses (Apprise URLs): added and removed in My account, each change audited.

An Apprise URL often carries a token of the messenger's bot or web hook: it is stored encrypted, never
logged, never shown again in full (the page shows the service and the label), and the audit trail names
only the service ("tgram").
"""

from __future__ import annotations

import apprise
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from rallypoint.audit.actions import record
from rallypoint.notify.models import MessengerAddress
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
