"""Hand composed messages to the SMTP relay the settings name, and say what it answered.

The settings always decide where mail goes (``EMAIL_HOST``/``EMAIL_PORT``/``EMAIL_USE_TLS``/
``EMAIL_USE_SSL``/``EMAIL_HOST_USER``/``EMAIL_HOST_PASSWORD``/``EMAIL_TIMEOUT``), in
development too: ``make run`` points them at its catcher rather than swapping the backend.

``EMAIL_TIMEOUT`` bounds a whole conversation, not each reply: smtplib's own timeout applies
to every socket operation, so a relay answering each command slowly could keep one message
for many times that. The worker's claim on a message lasts a few times ``EMAIL_TIMEOUT``
(``MAIL_CLAIM_LEASE_SECONDS``); a conversation that outlived it would let a second worker
send the same message while the first was still talking.

One ``Sender`` keeps one connection for many messages: a reused connection gets ``RSET``
before each message (a clean transaction, and proof the relay still answers: if it does
not, nothing of the message has been sent yet, so a fresh connection is opened at once),
carries at most ``MESSAGES_PER_CONNECTION`` messages, and is closed with ``QUIT`` when it
has been idle for ``REUSE_IDLE_SECONDS`` or the worker has nothing to send.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from portal.mail.compose import Composed
from portal.mail.errors import DeliveryError

# A connection idle longer than this is closed rather than probed: relays drop idle
# clients after a minute or so, and a fresh connection costs less than a failed send.
REUSE_IDLE_SECONDS = 30.0
# One that carried a message less than this long ago is used as it is: after a message's
# final 250 the session is ready for the next MAIL (RFC 5321, 3.3), and probing it with
# RSET first was one round trip per message, 15% of the worker's time at 8:40 (profiled).
# Between the two it is probed with RSET. Either way, a reused connection found dead at
# MAIL is replaced and MAIL sent again, once: nothing of the message had reached the relay.
CHECK_AFTER_IDLE_SECONDS = 2.0
# Then QUIT and a fresh connection: relays limit messages per connection (often to 100 or
# fewer), and a long-lived session is where a relay's per-connection state piles up.
MESSAGES_PER_CONNECTION = 100
# Replies that mean "fix the relay settings", not "this message is bad": retrying (and
# alerting through the failed attempts) beats failing every queued message at once.
CONFIGURATION_CODES = frozenset({530, 534, 535, 538})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# A socket timeout set to "what is left" may fire a hair before the deadline.
CLOCK_SLACK_SECONDS = 0.05


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
        self._carried = 0  # messages the current connection has carried

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def send(self, message: Composed) -> Accepted:
        """Deliver ``message`` to the relay or raise ``DeliveryError``.

        The whole conversation, connecting included, ends within ``EMAIL_TIMEOUT``.
        """
        deadline = time.monotonic() + settings.EMAIL_TIMEOUT
        try:
            conn, code, reply = self._begin(message.sender, deadline)
            if code != 250:
                raise self._refused(conn, code, reply)
            limit(conn, deadline)
            code, reply = conn.rcpt(message.recipient)
            if code not in (250, 251):
                raise self._refused(conn, code, reply)
            limit(conn, deadline)
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
            reason = f"{type(exc).__name__}: {exc}".strip()
            if time.monotonic() >= deadline - CLOCK_SLACK_SECONDS:
                reason = f"TimeoutError: {out_of_time()}"  # why, not "connection closed"
            raise DeliveryError(reason, transient=True) from None
        self._last_used = time.monotonic()
        self._carried += 1
        if self._carried >= MESSAGES_PER_CONNECTION:
            self.close()
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

    def _begin(self, sender: str, deadline: float) -> tuple[smtplib.SMTP, int, bytes]:
        """Send ``MAIL`` on a connection ready for it; return it with the relay's reply.

        A connection taken as it is (used a moment ago) that turns out dead at ``MAIL``
        (the relay or a NAT box dropped it) is replaced and ``MAIL`` sent again, once:
        nothing of this message has reached the relay yet, so that is safe.
        """
        conn, probed = self._connection(deadline)
        try:
            limit(conn, deadline)
            code, reply = conn.mail(sender)
        except (smtplib.SMTPServerDisconnected, ConnectionError):
            if probed:
                raise
            self.close()
            conn, _ = self._connection(deadline)
            limit(conn, deadline)
            code, reply = conn.mail(sender)
        return conn, code, reply

    def _connection(self, deadline: float) -> tuple[smtplib.SMTP, bool]:
        """Return a connection ready for ``MAIL``, and whether it is new or answered ``RSET``.

        The open one is reused as it is if it carried a message a moment ago, after
        ``RSET`` if it idled longer (one that does not answer is replaced at once), and
        closed if it idled past ``REUSE_IDLE_SECONDS``.
        """
        if self._conn is not None:
            idle = time.monotonic() - self._last_used
            if idle < CHECK_AFTER_IDLE_SECONDS:
                return self._conn, False
            if idle < REUSE_IDLE_SECONDS and self._reset(self._conn, deadline):
                return self._conn, True
            self.close()
        self._conn = connect(deadline)
        self._last_used = time.monotonic()
        self._carried = 0
        return self._conn, True

    def _reset(self, conn: smtplib.SMTP, deadline: float) -> bool:
        try:
            limit(conn, deadline)
            return conn.rset()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False


def limit(conn: smtplib.SMTP, deadline: float) -> None:
    """Let the next command wait only for what is left of the conversation's time.

    Raises ``TimeoutError`` (an ``OSError``, so a transient failure) once it is used up.
    """
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(out_of_time())
    if conn.sock is not None:
        conn.sock.settimeout(left)


def out_of_time() -> str:
    return (f"the SMTP conversation took longer than {settings.EMAIL_TIMEOUT} s "
            "(SMTP_TIMEOUT_SECONDS)")


def tls_context() -> ssl.SSLContext:
    """Return the TLS settings for the relay, made once per process and trust store.

    Certificates are verified against the system's trust store: an unverified TLS session
    would hand the relay password to anyone on the path. Loading that store takes tens of
    milliseconds, so it is not done again for every connection.
    """
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return ssl.create_default_context()  # reads SSL_CERT_FILE and SSL_CERT_DIR itself


def connect(deadline: float | None = None) -> smtplib.SMTP:
    """Open a connection to the configured relay: TLS or STARTTLS and login per settings.

    With ``deadline`` (a ``time.monotonic()`` value), connecting and every step after it
    end by then.
    """
    host, port = settings.EMAIL_HOST, int(settings.EMAIL_PORT)
    if deadline is None:
        deadline = time.monotonic() + settings.EMAIL_TIMEOUT
    timeout = max(0.001, deadline - time.monotonic())
    encrypted = settings.EMAIL_USE_SSL or settings.EMAIL_USE_TLS
    if settings.EMAIL_HOST_USER and not encrypted and host not in LOOPBACK_HOSTS:
        # Checked before connecting: the password must not cross a network in clear text.
        raise DeliveryError("Not sending the SMTP password over an unencrypted connection: "
                            "set SMTP_TLS to starttls or tls.", transient=True)
    conn: smtplib.SMTP
    if settings.EMAIL_USE_SSL:
        conn = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context())
    else:
        conn = smtplib.SMTP(host, port, timeout=timeout)
    try:
        limit(conn, deadline)
        conn.ehlo()
        if settings.EMAIL_USE_TLS:
            limit(conn, deadline)
            conn.starttls(context=tls_context())
            limit(conn, deadline)
            conn.ehlo()
        if settings.EMAIL_HOST_USER:
            limit(conn, deadline)
            conn.login(settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD)
    except BaseException:
        conn.close()
        raise
    return conn
