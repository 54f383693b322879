"""Hand composed messages to the SMTP relay the settings name, and say what it answered.

The settings always decide where mail goes (``EMAIL_HOST``/``EMAIL_PORT``/``EMAIL_USE_TLS``/
``EMAIL_USE_SSL``/``EMAIL_HOST_USER``/``EMAIL_HOST_PASSWORD``/``EMAIL_TIMEOUT``), in
development too: ``make run`` points them at its catcher rather than swapping the backend.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass

from django.conf import settings

from portal.mail.compose import Composed
from portal.mail.errors import DeliveryError

# A connection idle longer than this is closed rather than probed: relays drop idle
# clients after a minute or so, and a fresh connection costs less than a failed send.
REUSE_IDLE_SECONDS = 30.0
# Replies that mean "fix the relay settings", not "this message is bad": retrying (and
# alerting through the failed attempts) beats failing every queued message at once.
CONFIGURATION_CODES = frozenset({530, 534, 535, 538})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Accepted:
    code: int
    reply: str


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def classify(code: int, reply: bytes | str) -> DeliveryError:
    """Turn an SMTP reply into a transient (4xx, configuration) or permanent (5xx) error."""
    text = f"{code} {_text(reply)}".strip()
    transient = code < 500 or code in CONFIGURATION_CODES
    return DeliveryError(text, transient=transient, code=code)


class Sender:
    """One SMTP connection to the relay, reused across messages while it stays healthy."""

    def __init__(self) -> None:
        self._conn: smtplib.SMTP | None = None
        self._last_used = 0.0

    def send(self, message: Composed) -> Accepted:
        """Deliver ``message`` to the relay or raise ``DeliveryError``."""
        try:
            conn = self._connection()
            code, reply = conn.mail(message.sender)
            if code != 250:
                raise self._refused(conn, code, reply)
            code, reply = conn.rcpt(message.recipient)
            if code not in (250, 251):
                raise self._refused(conn, code, reply)
            code, reply = conn.data(message.data)
            if code != 250:
                raise self._refused(conn, code, reply)
        except DeliveryError:
            raise
        except smtplib.SMTPResponseException as exc:
            self.close()
            if isinstance(exc, smtplib.SMTPConnectError):
                # The greeting refused us: the relay, not this message, is unwell.
                raise DeliveryError(f"{exc.smtp_code} {_text(exc.smtp_error)}",
                                    transient=True, code=exc.smtp_code) from None
            raise classify(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Refused connections, timeouts, dropped connections and TLS failures: the
            # relay may be back in a minute.
            self.close()
            raise DeliveryError(f"{type(exc).__name__}: {exc}".strip(),
                                transient=True) from None
        self._last_used = time.monotonic()
        return Accepted(code, f"{code} {_text(reply)}")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def _refused(self, conn: smtplib.SMTP, code: int, reply: bytes) -> DeliveryError:
        error = classify(code, reply)
        try:
            conn.rset()  # leave the connection usable for the next message
        except (smtplib.SMTPException, OSError):
            self.close()
        if code == 421:  # the relay is closing this connection
            self.close()
        return error

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            if time.monotonic() - self._last_used < REUSE_IDLE_SECONDS and self._alive(self._conn):
                return self._conn
            self.close()
        self._conn = connect()
        self._last_used = time.monotonic()
        return self._conn

    def _alive(self, conn: smtplib.SMTP) -> bool:
        try:
            return conn.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False


def connect() -> smtplib.SMTP:
    """Open a connection to the configured relay: TLS or STARTTLS and login per settings."""
    host, port = settings.EMAIL_HOST, int(settings.EMAIL_PORT)
    timeout = settings.EMAIL_TIMEOUT
    # Certificates are verified against the system's trust store: an unverified TLS
    # session would hand the relay password to anyone on the path.
    context = ssl.create_default_context()
    encrypted = settings.EMAIL_USE_SSL or settings.EMAIL_USE_TLS
    if settings.EMAIL_HOST_USER and not encrypted and host not in LOOPBACK_HOSTS:
        # Checked before connecting: the password must not cross a network in clear text.
        raise DeliveryError("Not sending the SMTP password over an unencrypted connection: "
                            "set SMTP_TLS to starttls or tls.", transient=True)
    conn: smtplib.SMTP
    if settings.EMAIL_USE_SSL:
        conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        conn = smtplib.SMTP(host, port, timeout=timeout)
    try:
        conn.ehlo()
        if settings.EMAIL_USE_TLS:
            conn.starttls(context=context)
            conn.ehlo()
        if settings.EMAIL_HOST_USER:
            conn.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
    except BaseException:
        conn.close()
        raise
    return conn
