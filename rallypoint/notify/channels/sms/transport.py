"""SMS and voice calls through the provider configured in the settings (the HTTP gateway)."""

from __future__ import annotations

import re

from django.conf import settings

from rallypoint.notify.channels.base import Address, Channel, Message, TransportError
from rallypoint.notify.channels.sms.providers import HttpGateway, Outgoing, Provider

_SEPARATORS = re.compile(r"[\s\-./()\u00a0]")
_NUMBER = re.compile(r"\+?[0-9]{3,17}")


def normalise_phone(number: str) -> str:
    """``+49 (170) 123-45 67`` and ``0049 170 1234567`` → ``+491701234567``; invalid → permanent error.

    A number without country code stays national (``01701234567``): the gateway must know the country.
    """
    number = _SEPARATORS.sub("", number)
    if number.startswith("00"):
        number = "+" + number[2:]
    if not _NUMBER.fullmatch(number):
        raise TransportError("phone number not valid", permanent=True)
    return number


class SmsChannel(Channel):
    kind = "sms"
    #: Shown in error texts ("SMS gateway not configured").
    gateway_name = "SMS gateway"

    def __init__(self) -> None:
        self._provider: Provider | None = None
        self._config: tuple[str, str] | None = None

    def gateway_settings(self) -> tuple[str, str]:
        return settings.SMS_GATEWAY_URL, settings.SMS_GATEWAY_TOKEN

    def text(self, message: Message) -> str:
        return message.short

    def send(self, message: Message, address: Address) -> str:
        if not address.phone.strip():
            raise TransportError("no phone number", permanent=True)
        outgoing = Outgoing(kind=self.kind, to=normalise_phone(address.phone), text=self.text(message),
                            key=message.delivery_key, priority=message.priority, drill=message.is_drill,
                            language=message.language)
        return self.provider().send(outgoing)

    def provider(self) -> Provider:
        """The provider for the current settings (made again when they change, as between tests)."""
        config = self.gateway_settings()
        if config != self._config:
            self.close()
            url, token = config
            if not url:
                raise TransportError(f"{self.gateway_name} not configured", permanent=True)
            self._provider, self._config = HttpGateway(url, token, name=self.gateway_name), config
        return self._provider

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()
        self._provider, self._config = None, None


class VoiceChannel(SmsChannel):
    """A phone call that reads the short message out."""

    kind = "voice"
    gateway_name = "voice gateway"

    def gateway_settings(self) -> tuple[str, str]:
        return settings.VOICE_GATEWAY_URL, settings.VOICE_GATEWAY_TOKEN

    def text(self, message: Message) -> str:
        """The short message without the answer link: a link read out helps nobody."""
        text = message.short
        if message.answer_url and text.endswith(message.answer_url):
            text = text[: -len(message.answer_url)].rstrip()
        return text
