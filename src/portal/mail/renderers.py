"""Render-at-send-time hooks for outbox messages whose content must not sit in the database.

A sign-in link email is queued by the web request without a body. When the worker claims it,
it calls the registered renderer, which decides whether to send at all (the address may not
be allowed to sign in), mints the secret, stores only its hash, and returns the content.
So the database never holds a usable link, and the web request never decides who gets one.

Contract for a renderer registered under a name (``OutboundMessage.renderer``):
- ``render(message)`` runs in its own committed transaction before the SMTP conversation and
  returns ``Rendered``; it raises ``Cancel(reason)`` to send nothing (status ``cancelled``)
  or ``Cancel(reason, expired=True)`` when the content would arrive pointless (``expired``).
- ``delivered(message)`` runs after the relay accepted it (status ``sent``).
- ``failed(message, error)`` runs when the worker gives up (status ``failed``).
- ``expired(message)`` runs when ``not_after`` passed before the worker got to it
  (status ``expired``; ``render`` is not called).
Each may write audit rows; each is called at most once per attempt.

How the worker runs them (``portal.mail.worker``):
- ``render`` runs inside a transaction the worker opens. Rows it writes directly before
  raising ``Cancel`` commit together with the new status (so a "declined" audit row
  survives); rows written inside the renderer's own ``atomic`` block are rolled back when
  ``Cancel`` leaves that block, as with any exception. Any other exception rolls everything
  back and counts as a failed attempt (retried with backoff).
- A message whose ``not_after`` has passed is marked ``expired`` without calling ``render``.
- ``delivered`` and ``failed`` run in a savepoint of the transaction recording the result:
  if one raises, the error is logged and the status still commits (never a second send).
- The rendered subject is stored on the row for staff; the bodies are never stored.

Optional, for a worker that delivers in batches (``portal.mail.worker``):
- ``prepare()`` runs once per worker process before the first claim (compile templates,
  load what every render needs), so no message pays for it.
- ``render_many(messages)`` renders several claimed messages in one call, inside one
  transaction the worker opens, and returns ``{message.pk: Rendered or Cancel}`` with the
  same meaning, per message, as ``render``; a message missing from the result is rendered
  on its own at send time. If it raises, nothing it wrote is kept and each message is
  rendered on its own. A rendering older than a few seconds when its turn to be sent
  comes is done again with ``render``, so ``render`` must be safe to repeat (give the same
  content for the same message).
- ``delivered_many(messages)`` is ``delivered`` for the messages of a batch the relay
  accepted, called once after the batch's last message; if it raises, ``delivered`` is
  called for each message instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from portal.mail.models import OutboundMessage


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Cancel(Exception):  # named for the verb it is, not an error
    """Send nothing for this message."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


class Renderer(Protocol):
    def render(self, message: OutboundMessage) -> Rendered: ...
    def delivered(self, message: OutboundMessage) -> None: ...
    def failed(self, message: OutboundMessage, error: str) -> None: ...
    def expired(self, message: OutboundMessage) -> None: ...


_REGISTRY: dict[str, Renderer] = {}


def register(name: str, renderer: Renderer) -> None:
    _REGISTRY[name] = renderer


def all_renderers() -> list[Renderer]:
    return list(_REGISTRY.values())


def get(name: str) -> Renderer:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise LookupError(f"no mail renderer registered as {name!r}") from None
