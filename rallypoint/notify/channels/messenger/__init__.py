"""Messengers through Apprise URLs (Teams, Slack, Telegram, Signal, Matrix, ntfy, …); see docs/channels.md."""

from __future__ import annotations

from rallypoint.notify.channels.messenger.transport import AppriseChannel

__all__ = ["AppriseChannel"]
