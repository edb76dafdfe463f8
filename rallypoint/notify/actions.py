"""Changes to how a person is reached: their browsers' Web Push subscriptions.

A person subscribes the browser they are using, for the site they work in now,
and removes it again. The endpoint is personal data: it is stored encrypted,
looked up by its SHA-256, and never written to the audit trail or a log.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from rallypoint.audit.actions import record
from rallypoint.notify.channels.webpush import subscriptions
from rallypoint.notify.models import PushSubscription
from rallypoint.people.models import Membership
from rallypoint.tenants.models import Site

MAX_LABEL_LENGTH = 120


def _require_own_membership(user, site: Site, membership: Membership | None) -> Membership:
    if (membership is None or membership.site_id != site.pk or membership.user_id != user.pk
            or not membership.is_active):
        raise PermissionDenied(_("Only people of this site can receive its alarms on this device."))
    return membership


def subscribe(*, user, site: Site, membership: Membership | None, subscription: object,
              label: str = "", session_handle: str = "") -> PushSubscription:
    """Store (or renew) the browser's push subscription for ``membership``.

    A browser that subscribes again is recognised by its endpoint and its row
    is updated: it may now belong to whoever is signed in on it.
    """
    membership = _require_own_membership(user, site, membership)
    data = subscriptions.parse(subscription)
    label = (label or "").strip()[:MAX_LABEL_LENGTH]
    digest = subscriptions.endpoint_hash(data.endpoint)
    try:
        with transaction.atomic():
            row = PushSubscription.objects.for_site(site).select_for_update().filter(endpoint_hash=digest).first()
            created = row is None
            before = {} if created else {"device": row.label, "person": row.membership_id}
            if created:
                row = PushSubscription(site=site, endpoint_hash=digest)
            row.membership, row.endpoint, row.p256dh, row.auth, row.label, row.session_handle = (
                membership, data.endpoint, data.p256dh, data.auth, label, session_handle[:32])
            row.save()
            after = {"device": label, "person": membership.pk}
            changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
            record(actor=user, organization=site.organization, site=site,
                   action="push.subscribed" if created else "push.renewed",
                   object_type="push_subscription", object_id=row.pk, changes=changes)
    except IntegrityError:
        # The same browser subscribed twice at the same moment: the other request stored it.
        raise ValidationError(_("This browser is being subscribed already. Please try again.")) from None
    return row


def unsubscribe(*, user, site: Site, membership: Membership | None, endpoint: object) -> int:
    """Remove the browser's subscription, if it is the signed-in person's at this site; returns how many."""
    membership = _require_own_membership(user, site, membership)
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > subscriptions.MAX_ENDPOINT_LENGTH:
        raise ValidationError(_("Send the endpoint of the browser's push subscription."))
    with transaction.atomic():
        rows = list(PushSubscription.objects.for_site(site).filter(
            membership=membership, endpoint_hash=subscriptions.endpoint_hash(endpoint)))
        for row in rows:
            record(actor=user, organization=site.organization, site=site, action="push.unsubscribed",
                   object_type="push_subscription", object_id=row.pk, changes={"device": [row.label, None]})
            row.delete()
    return len(rows)


def forget_signed_out(handle: str) -> int:
    """The browser of this session was signed out on purpose: it gets no more alarm notifications (a
    shared device must not show the alarms of the person before). A session that merely expired keeps
    its subscription: alarms reach a phone whose app has not been opened for a while."""
    return _forget(PushSubscription.objects.filter(session_handle=handle)) if handle else 0


def forget_every_device(user, *, keep_handle: str = "") -> int:
    """All of the user's sessions were ended ("sign out everywhere", a new password): every browser of
    theirs stops getting alarm notifications, also one whose session had expired long ago (a lost
    phone), except the browser of the session that stays."""
    rows = PushSubscription.objects.filter(membership__user=user)
    if keep_handle:
        rows = rows.exclude(session_handle=keep_handle)
    return _forget(rows)


def _forget(rows) -> int:
    rows = list(rows.select_related("site__organization"))
    for row in rows:
        record(actor=None, organization=row.site.organization, site=row.site, action="push.signed_out",
               object_type="push_subscription", object_id=row.pk, changes={"device": [row.label, None]})
    PushSubscription.objects.filter(pk__in=[r.pk for r in rows]).delete()
    return len(rows)
