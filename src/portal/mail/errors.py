"""Domain errors of the mail app: one base, each error a sentence a person can act on."""

from __future__ import annotations


class MailError(Exception):
    """Base of the mail app's domain errors."""


class InvalidRecipient(MailError):
    """The address cannot be mailed; nothing was queued.

    Raised before a row is written, so a caller's transaction can turn it into a form
    error instead of leaving a message that could never be delivered.
    """

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(reason)
        self.address = address
        self.reason = reason


class DeliveryError(MailError):
    """One attempt to hand a message to the relay did not succeed.

    ``transient`` failures (relay unreachable, timeouts, 4xx replies, TLS or login
    trouble that an operator can fix) are retried with backoff; permanent ones (5xx
    replies about this message) are not.
    """

    def __init__(self, reply: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(reply)
        self.reply = reply
        self.transient = transient
        self.code = code
