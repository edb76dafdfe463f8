"""Messengers (Teams, Slack, Telegram, Signal, Matrix, ntfy, …) through Apprise URLs.

A person may have several URLs; the short message goes to each. Reaching at
least one of them is success; failing on all of them is retried.

Apprise URLs carry tokens, and Apprise logs URLs, host names and message bodies
(which hold the one-tap answer link). So Apprise's own log lines are cut down
to "something went wrong" before any handler sees them, and the HTTP library
underneath never logs below INFO (its DEBUG lines name request paths, where
webhook tokens live).
"""

from __future__ import annotations

import contextlib
import logging

import apprise
from apprise import NotifyFormat, NotifyType

from rallypoint.notify.channels.base import Address, Channel, Message, TransportError


class WithholdDetails(logging.Filter):
    """Drops Apprise's debug and info lines; keeps only the level and origin of the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        record.msg = "messenger (apprise) reported a problem; details withheld, they may contain addresses"
        record.args = None
        record.exc_info = record.exc_text = None
        return True


def quiet_libraries() -> None:
    """Idempotent; runs when this module is first imported (the registry imports channels lazily)."""
    apprise_log = logging.getLogger("apprise")
    if not any(isinstance(f, WithholdDetails) for f in apprise_log.filters):
        apprise_log.addFilter(WithholdDetails())
    for name in ("urllib3", "requests"):
        library_log = logging.getLogger(name)
        if library_log.level < logging.INFO:  # NOTSET (0) follows the root logger, which may be DEBUG
            library_log.setLevel(logging.INFO)


quiet_libraries()


def _notify_type(message: Message) -> NotifyType:
    if message.event == "ended":
        return NotifyType.SUCCESS
    return NotifyType.INFO if message.is_drill else NotifyType.WARNING


class AppriseChannel(Channel):
    kind = "apprise"

    def __init__(self) -> None:
        # In memory only: no plugin state or generated keys written to disk.
        self._asset = apprise.AppriseAsset(app_id="Rallypoint", app_desc="Rallypoint alarm",
                                           storage_mode="memory", pem_autogen=False)

    def send(self, message: Message, address: Address) -> str:
        urls = [url.strip() for url in address.messenger if url and url.strip()]
        if not urls:
            raise TransportError("no messenger address", permanent=True)
        services = [apprise.Apprise.instantiate(url, asset=self._asset) for url in urls]
        services = [service for service in services if service is not None]
        if not services:
            raise TransportError("messenger address not valid", permanent=True)
        reached = sum(self._notify(service, message) for service in services)
        if not reached:
            raise TransportError(f"messenger failed on all {len(services)} addresses")
        return ""

    def _notify(self, service, message: Message) -> bool:
        with contextlib.suppress(Exception):  # a plugin's exception text may name the URL: count it as failed
            return bool(service.notify(body=message.short, title=message.subject,
                                       notify_type=_notify_type(message), body_format=NotifyFormat.TEXT))
        return False
