"""Sending e-mail without letting a mail-server outage break the page that triggered it."""

from __future__ import annotations

import logging
import smtplib

from django.core.mail import send_mail

log = logging.getLogger("rallypoint.mail")


def deliver(subject: str, body: str, recipients: list[str]) -> bool:
    """Send one e-mail; False (and a log line without any address) when the mail server fails."""
    try:
        send_mail(subject, body, None, recipients)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("e-mail could not be delivered", extra={"status": type(exc).__name__})
        return False
    return True
