"""SMS and voice calls through a provider interface with one generic HTTP-gateway adapter; see docs/channels.md."""

from __future__ import annotations

from rallypoint.notify.channels.sms.transport import SmsChannel, VoiceChannel

__all__ = ["SmsChannel", "VoiceChannel"]
