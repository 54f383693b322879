"""Write email into the outbox: the only way the portal sends mail.

``enqueue`` stores a row in the caller's transaction and nothing else: it never talks SMTP,
so a web request never waits on a relay, a rolled-back request sends nothing, and a
committed one cannot be lost (a worker delivers it; see ``portal.mail.worker``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from email.utils import make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from portal.accounts.services import InvalidEmail, clean_email
from portal.core.clock import now
from portal.mail.errors import InvalidRecipient
from portal.mail.models import OutboundMessage

# PostgreSQL channel the workers LISTEN on; see ``portal.mail.wakeup``.
NOTIFY_CHANNEL = "portal_outbox"
SUBJECT_MAX = OutboundMessage._meta.get_field("subject").max_length or 300


def clean_subject(subject: str) -> str:
    """Return the subject on one line, within the column's length.

    A line break in a subject would end the header early; collapsing whitespace keeps a
    title typed by a customer (``New comment on <title>``) from adding headers.
    """
    flat = " ".join(subject.split())
    if len(flat) > SUBJECT_MAX:
        flat = flat[: SUBJECT_MAX - 1].rstrip() + "…"
    return flat


def clean_recipient(address: str) -> str:
    """Return the normalized address or raise ``InvalidRecipient`` saying what is wrong."""
    try:
        return clean_email(address)
    except InvalidEmail as exc:
        raise InvalidRecipient(address, str(exc)) from None


def from_domain() -> str:
    """Return the domain of the From address: Message-IDs and DKIM use it."""
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2].lower()


def new_message_id() -> str:
    # Our own domain, never the host name: a Message-ID naming an internal machine leaks
    # it and hurts deliverability.
    return make_msgid(domain=from_domain())


def enqueue(*, to: str, subject: str = "", text: str = "", html: str = "",
            kind: str = "generic", renderer: str = "", payload: dict[str, Any] | None = None,
            not_after: datetime | None = None) -> OutboundMessage:
    """Queue one email in the caller's transaction and return its row.

    Give either the content (``subject``, ``text``, optionally ``html``) or the name of a
    ``renderer`` that produces it at send time (``portal.mail.renderers``). ``not_after``
    is the moment after which sending is pointless: the worker marks the message expired
    instead. Raises ``InvalidRecipient`` before writing anything.
    """
    address = clean_recipient(to)
    if not renderer and not (text or html):
        raise ValueError("enqueue needs a text or HTML body, or a renderer")
    moment = now()
    message = OutboundMessage.objects.create(
        kind=kind[:40], to=address, subject=clean_subject(subject), text_body=text,
        html_body=html, renderer=renderer, payload=payload or {}, created_at=moment,
        next_attempt_at=moment, not_after=not_after, message_id=new_message_id())
    notify_workers()
    return message


@transaction.atomic
def requeue(messages: Iterable[OutboundMessage]) -> int:
    """Queue failed or expired messages again, to be tried now; return how many.

    The attempt counter starts afresh (the earlier attempts stay in the record) and the
    deadline is lifted: a person asked for this send. A late-rendered message still has
    its renderer's own checks (a sign-in link past its lifetime is not sent).
    """
    retryable = (OutboundMessage.Status.FAILED, OutboundMessage.Status.EXPIRED)
    ids = [m.pk for m in messages if m.status in retryable]
    count = OutboundMessage.objects.filter(pk__in=ids, status__in=retryable).update(
        status=OutboundMessage.Status.QUEUED, next_attempt_at=now(), attempt_count=0,
        not_after=None, claimed_by="", claimed_until=None, last_error="")
    if count:
        notify_workers()
    return count


def notify_workers() -> None:
    """Wake listening workers (PostgreSQL) once the surrounding transaction commits.

    ``NOTIFY`` is itself transactional: PostgreSQL delivers it at commit and drops it on
    rollback, so a worker never wakes for a row it cannot see. Elsewhere workers poll.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")
