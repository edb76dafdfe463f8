"""E-mail through Django's mail settings, with one SMTP connection kept per sending thread.

With the SMTP backend (``RP_SMTP_HOST`` set) the channel opens the connection
through Django's backend (TLS, sign-in, time-out from the settings), keeps it
between sends, and reconnects once when the server dropped it. With any other
backend (the file outbox of the embedded mode) it hands the message to that
backend.

Classification: the server refusing the recipient or the message (5xx) is
permanent; everything else (connection errors, 4xx, a refused sign-in or
sender, which the operator can fix) is retried. Error texts carry the SMTP code
only, never the server's reply, which often repeats the address.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import time

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.utils.module_loading import import_string

from rallypoint.notify.channels.base import Address, Channel, Message, TransportError
from rallypoint.notify.channels.email import mime

#: A connection unused this long is replaced rather than trusted (servers and NAT drop idle ones).
IDLE_SECONDS = 30.0
_ENHANCED_CODE = re.compile(rb"\s*([245]\.\d{1,3}\.\d{1,3})\b")


def _code(code: int, reply: bytes | str = b"") -> str:
    """``SMTP 550 5.1.1``: the reply code and the enhanced status code, nothing of the free text."""
    if isinstance(reply, str):
        reply = reply.encode("utf-8", "replace")
    match = _ENHANCED_CODE.match(reply or b"")
    return f"SMTP {code} {match.group(1).decode()}" if match else f"SMTP {code}"


def classify(exc: Exception) -> tuple[TransportError, bool]:
    """The error to report for an SMTP failure, and whether the connection is gone."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        return _refused("recipient", code, reply, permanent=True), code == 421
    if isinstance(exc, smtplib.SMTPSenderRefused):  # the operator's From address: fixable, so retried
        return _refused("sender", exc.smtp_code, exc.smtp_error, permanent=False), exc.smtp_code == 421
    if isinstance(exc, smtplib.SMTPDataError):
        return _refused("message", exc.smtp_code, exc.smtp_error, permanent=True), exc.smtp_code == 421
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return TransportError(f"mail server refused the sign-in ({_code(exc.smtp_code, exc.smtp_error)})"), True
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransportError("mail server closed the connection"), True
    if isinstance(exc, smtplib.SMTPResponseException):
        return TransportError(f"mail server error ({_code(exc.smtp_code, exc.smtp_error)})"), True
    if isinstance(exc, smtplib.SMTPException):  # e.g. STARTTLS or sign-in not offered
        return TransportError(f"mail server error ({type(exc).__name__})"), True
    return TransportError(f"mail server unreachable ({type(exc).__name__})"), True


def _refused(what: str, code: int, reply: bytes | str, *, permanent: bool) -> TransportError:
    """5xx: refused (permanent for the recipient and the message); 4xx: deferred, retried."""
    if 500 <= code < 600:
        return TransportError(f"mail server refused the {what} ({_code(code, reply)})", permanent=permanent)
    return TransportError(f"mail server deferred the {what} ({_code(code, reply)})")


class EmailChannel(Channel):
    kind = "email"

    def __init__(self) -> None:
        self._config: tuple | None = None
        self._backend = None
        self._smtp = False
        self._sender: mime.Sender | None = None
        self._last_used = 0.0

    def send(self, message: Message, address: Address) -> str:
        if not address.email.strip():
            raise TransportError("no e-mail address", permanent=True)
        to = mime.recipient(address.email)
        self._configure()
        if self._smtp:
            return self._send_smtp(message, to)
        mail = mime.as_django_message(message, to, self._sender, settings.DEFAULT_FROM_EMAIL)
        try:
            self._backend.send_messages([mail])
        except OSError as exc:
            raise TransportError(f"mail backend failed ({type(exc).__name__})") from None
        return mime.message_id(message, self._sender)

    def close(self) -> None:
        """Say goodbye to the server (QUIT) if the connection is still fresh, else just drop it."""
        if self._backend is None:
            return
        if self._smtp and time.monotonic() - self._last_used > IDLE_SECONDS:
            self._drop()
        with contextlib.suppress(Exception):
            self._backend.close()

    def _configure(self) -> None:
        """(Re)create the backend when the mail settings changed (they do between tests)."""
        config = (settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_HOST_USER,
                  settings.EMAIL_HOST_PASSWORD, settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL,
                  settings.EMAIL_TIMEOUT, settings.DEFAULT_FROM_EMAIL)
        if config == self._config:
            return
        try:
            sender = mime.Sender.from_setting(settings.DEFAULT_FROM_EMAIL)
        except ValueError:
            raise TransportError("sender address (RP_MAIL_FROM) not valid") from None
        self.close()
        self._backend = get_connection(settings.EMAIL_BACKEND, fail_silently=False)
        self._smtp = issubclass(import_string(settings.EMAIL_BACKEND), SmtpBackend)
        self._sender, self._config = sender, config

    def _send_smtp(self, message: Message, to: str) -> str:
        data = mime.as_bytes(message, to, self._sender)
        reused = self._open()
        failure = self._sendmail(to, data)
        if failure is not None and failure[1] and reused:
            self._open()  # the kept connection had died: once more on a fresh one
            failure = self._sendmail(to, data)
        if failure is not None:
            raise failure[0]
        self._last_used = time.monotonic()
        return mime.message_id(message, self._sender)

    def _sendmail(self, to: str, data: bytes) -> tuple[TransportError, bool] | None:
        """None when the server took the message, else the error and whether the connection is gone."""
        try:
            self._backend.connection.sendmail(self._sender.envelope, [to], data)
        except (smtplib.SMTPException, OSError) as exc:  # SMTPException is an OSError too
            failure = classify(exc)
            if failure[1]:
                self._drop()
            return failure
        return None

    def _open(self) -> bool:
        """Make sure a connection is open; True if it was already open (and might have died meanwhile)."""
        backend = self._backend
        if backend.connection is not None and time.monotonic() - self._last_used > IDLE_SECONDS:
            self._drop()
        if backend.connection is not None:
            return True
        try:
            backend.open()
        except (smtplib.SMTPException, OSError) as exc:
            raise classify(exc)[0] from None
        self._last_used = time.monotonic()
        return False

    def _drop(self) -> None:
        """Forget the connection without a QUIT, which could hang on a dead one."""
        connection, self._backend.connection = self._backend.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()
