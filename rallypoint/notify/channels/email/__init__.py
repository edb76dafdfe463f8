"""E-mail (SMTP): plain text and HTML with the one-tap answer link; see docs/channels.md."""

from __future__ import annotations

from rallypoint.notify.channels.email.transport import EmailChannel

__all__ = ["EmailChannel"]
