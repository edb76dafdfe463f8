"""The contract every channel implements.

A channel is one class in ``rallypoint/notify/channels/<kind>/``. The worker
calls :meth:`Channel.send` with a delivery and the message rendered for its
recipient; the channel either returns (handed over) or raises
:class:`TransportError`. ``permanent=True`` means "retrying cannot help" (no
address, address rejected); otherwise the worker retries with back-off.
Error messages never contain an address or a name: they are stored and logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class Message:
    """What one recipient is told, in their language."""

    delivery_key: str  # unique per delivery; providers that de-duplicate get it
    alarm_id: int
    site_id: int
    event: str  # triggered, updated, level_raised, escalated, ended
    subject: str  # one line: "[DRILL] Fire — evacuate"
    text: str  # plain text body (e-mail text part, push body)
    short: str  # at most 300 characters (SMS, voice, messenger)
    html: str  # e-mail HTML part
    url: str  # the alarm in the web app
    answer_url: str = ""  # one-tap accept/decline link, when an answer is required
    priority: int = 1
    is_drill: bool = False
    silent: bool = False
    color: str = "#b3261e"
    language: str = "en"
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Address:
    """Where a recipient is reached on the delivery's channel; filled in by the worker."""

    email: str = ""
    phone: str = ""
    push: tuple = ()  # PushSubscription rows
    messenger: tuple = ()  # Apprise URLs


class Channel:
    """Base class. Subclasses set ``kind`` and implement :meth:`send`."""

    kind: str = ""
    #: True when the worker hands several deliveries to one send_many call (e.g. one SMTP connection).
    batched: bool = False

    def send(self, message: Message, address: Address) -> str:
        """Send one message; return a provider id (may be empty). Raise TransportError on failure."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections kept between sends (called when the worker stops)."""

    @classmethod
    def after_batch(cls) -> None:
        """Called by the worker, in its own thread, after the outcomes of a batch are recorded: for the
        channel's bookkeeping that costs one write per batch instead of one per message."""
