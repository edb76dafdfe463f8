"""Kinds of messages besides alarms: each is rendered by a class registered here under its name.

An app that wants to tell someone something (an invitation, a password link, later a status request)
queues a :class:`~rallypoint.notify.models.Delivery` of its kind with :func:`rallypoint.notify.outbox.queue`;
the worker claims it with the alarms' deliveries and asks the kind to render it. A kind's
:meth:`MessageKind.prepare` gets all of a batch's deliveries of that kind at once, so that it can load
what it needs in a few queries, and returns for each the message and where it goes.
"""

from __future__ import annotations

from collections.abc import Iterable

from rallypoint.notify.channels.base import Address, Message, TransportError


class MessageKind:
    """Base class. Subclasses set ``name`` and implement :meth:`prepare`."""

    name: str = ""

    def prepare(self, deliveries: list) -> dict[int, tuple[Message, Address] | TransportError]:
        """For each claimed delivery (``worker.Claimed``; ``pk``, ``user_id``, ``membership_id``, ``context``,
        ``key``, ``channel``) its message and address, or the error that makes it unsendable (a person
        removed meanwhile: ``TransportError(..., permanent=True)``)."""
        raise NotImplementedError


_kinds: dict[str, MessageKind] = {}


def register(kind: type[MessageKind]) -> type[MessageKind]:
    """Class decorator: make ``kind`` the renderer of its name."""
    if not kind.name or kind.name in _kinds:
        raise ValueError(f"message kind {kind.name!r} is unnamed or registered twice")
    _kinds[kind.name] = kind()
    return kind


def kind_for(name: str) -> MessageKind | None:
    return _kinds.get(name)


def names() -> Iterable[str]:
    return _kinds.keys()
