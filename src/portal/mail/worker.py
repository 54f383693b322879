"""Deliver the outbox: claim a due message, render it, hand it to the relay, record the result.

Safe with any number of workers on any number of machines. A claim is one short
transaction that moves a row to ``sending`` under ``SELECT … FOR UPDATE SKIP LOCKED``
(PostgreSQL; SQLite's write lock serializes claims) and stamps it with a lease. A worker
that dies mid-send leaves a ``sending`` row whose lease runs out; the next claim takes it
again and records the interrupted attempt, so the message is retried, never lost.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Q, QuerySet

from portal.core.clock import now
from portal.core.moments import format_moment
from portal.mail import renderers
from portal.mail.compose import compose
from portal.mail.errors import DeliveryError
from portal.mail.models import DeliveryAttempt, OutboundMessage
from portal.mail.outbox import clean_subject, new_message_id
from portal.mail.renderers import Cancel, Rendered
from portal.mail.smtp import Accepted, Sender
from portal.mail.wakeup import Wakeup
from portal.metrics import counters

log = logging.getLogger("portal.mail.worker")
Status = OutboundMessage.Status

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
BACKOFF_JITTER = 0.2  # ±20%: workers that failed together do not retry together


def lease() -> timedelta:
    """How long a claim holds a message: longer than any SMTP conversation (see settings)."""
    return timedelta(seconds=settings.MAIL_CLAIM_LEASE_SECONDS)


def backoff(attempts: int) -> timedelta:
    """Return the wait before the next try after ``attempts`` failed ones (30 s, 60 s, … 1 h)."""
    seconds = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    factor = random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)  # noqa: S311 - not a secret
    return timedelta(seconds=seconds * factor)


def worker_name() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Claim:
    message: OutboundMessage
    # Set when the row was taken over from a worker whose lease ran out.
    interrupted_by: str | None
    claimed_at: datetime


def due(moment: datetime) -> Q:
    return (Q(status__in=[Status.QUEUED, Status.RETRYING], next_attempt_at__lte=moment)
            | Q(status=Status.SENDING, claimed_until__lt=moment)
            | Q(status=Status.SENDING, claimed_until__isnull=True))


def claim_next(worker: str, cutoff: datetime | None = None) -> Claim | None:
    """Take the oldest message due by ``cutoff`` (default now) for ``worker``, or None."""
    with transaction.atomic():
        rows = OutboundMessage.objects.filter(due(cutoff or now())).order_by(
            "next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            # Rows another worker is claiming right now are skipped, not waited for: each
            # worker takes a different message and none blocks on another.
            rows = rows.select_for_update(skip_locked=True)
        message = rows.first()
        if message is None:
            return None
        interrupted_by = (message.claimed_by or "?") if message.status == Status.SENDING else None
        message.status = Status.SENDING
        message.claimed_by = worker
        claimed_at = now()
        message.claimed_until = claimed_at + lease()
        if not message.message_id:
            message.message_id = new_message_id()
        message.save(update_fields=["status", "claimed_by", "claimed_until", "message_id"])
    return Claim(message, interrupted_by, claimed_at)


class ClaimLost(Exception):
    """This worker's lease ran out and another worker holds the message now."""


def process(claim: Claim, worker: str, sender: Sender) -> str:
    """Carry one claimed message to its next status and return that status.

    Returns ``sending`` when the claim was lost on the way: the status is then the
    business of the worker that holds the row now.
    """
    try:
        return _carry(claim, worker, sender)
    except ClaimLost as lost:
        log.warning("message %s: %s, but worker %s no longer held it; left to the worker "
                    "that does", claim.message.pk, lost, worker)
        return Status.SENDING


def _carry(claim: Claim, worker: str, sender: Sender) -> str:
    message = claim.message
    started = now()
    if claim.interrupted_by is not None:
        error = DeliveryError(f"Worker {claim.interrupted_by} stopped before finishing this "
                              "attempt; it may or may not have reached the relay.",
                              transient=True)
        outcome = _record_failure(message, worker, error, started, release=False)
        if outcome == Status.FAILED:
            return outcome
    if message.not_after is not None and started >= message.not_after:
        # Pointless now (a sign-in link that would arrive dead): record it, send nothing.
        outcome = _finish(message, worker, Status.EXPIRED,
                          f"Not sent: it would have arrived after its deadline, "
                          f"{format_moment(message.not_after, UTC)}.")
        if message.renderer:
            _call_hook("expired", message)
        return outcome
    try:
        content = _content(message)
    except Cancel as cancel:
        status = Status.EXPIRED if cancel.expired else Status.CANCELLED
        return _finish(message, worker, status, f"Not sent: {cancel.reason}")
    except Exception as exc:
        # A renderer bug or a renderer this worker does not know yet (deploy skew):
        # retried, and bounded by max_attempts like any transient failure.
        log.exception("rendering message %s failed", message.pk)
        return _record_failure(message, worker, DeliveryError(
            f"Could not render the message: {type(exc).__name__}: {exc}", transient=True), started)
    try:
        composed = compose(to=message.to, subject=content.subject, text=content.text,
                           html=content.html, message_id=message.message_id, date=now())
    except Exception as exc:  # e.g. an unreadable DKIM key: an operator can fix it
        log.exception("composing message %s failed", message.pk)
        return _record_failure(message, worker, DeliveryError(
            f"Could not build the message: {type(exc).__name__}: {exc}", transient=True), started)
    # Fencing costs a commit, so it is skipped when the claim is seconds old; after a slow
    # render (or anything near the lease) it proves the row is still ours before sending.
    # Either way at least three quarters of a lease, several times the longest SMTP
    # conversation, is left when the conversation starts.
    if now() - claim.claimed_at > lease() / 4 and not _renew(message, worker):
        # Our lease ran out while rendering and another worker holds the row now: sending
        # as well would deliver twice.
        raise ClaimLost("not sent")
    try:
        accepted = sender.send(composed)
    except DeliveryError as error:
        return _record_failure(message, worker, error, started)
    return _record_success(message, worker, accepted, started)


def deliver_due(limit: int | None = None) -> int:
    """Process every message due now (claim, render, send, record); return how many.

    Synchronous and bounded: only rows due when the call starts are taken, so a message
    rescheduled for a retry is not tried again in the same call. Tests use it to "run
    the worker once".
    """
    worker = worker_name()
    cutoff = now()
    sender = Sender()
    handled = 0
    try:
        while limit is None or handled < limit:
            claim = claim_next(worker, cutoff)
            if claim is None:
                break
            _log_outcome(claim.message, process(claim, worker, sender))
            handled += 1
    finally:
        sender.close()
    return handled


class Worker:
    """The long-running delivery loop behind ``portal worker``."""

    def __init__(self, *, name: str | None = None, poll_interval: float = 1.0) -> None:
        self.name = name or worker_name()
        self.poll_interval = poll_interval

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; the message in hand is always finished first."""
        sender = Sender()
        wakeup = Wakeup()
        log.info("worker %s started", self.name)
        try:
            wakeup.start()
            while not stop.is_set():
                close_old_connections()
                try:
                    handled = self.run_once(stop, sender)
                except DatabaseError:
                    log.exception("database error; trying again shortly")
                    connection.close()
                    handled = 0
                if handled == 0 and not stop.is_set():
                    sender.close()  # do not hold an idle relay connection open
                    wakeup.wait(self.poll_interval, stop)
        finally:
            sender.close()
            wakeup.close()
            connection.close()
            log.info("worker %s stopped", self.name)

    def run_once(self, stop: threading.Event, sender: Sender) -> int:
        handled = 0
        while not stop.is_set():
            claim = claim_next(self.name)
            if claim is None:
                break
            _log_outcome(claim.message, process(claim, self.name, sender))
            handled += 1
        return handled


def _content(message: OutboundMessage) -> Rendered:
    """Return what to send: the stored content, or a late render in its own transaction.

    Writes a renderer makes before raising ``Cancel`` commit together with the new
    status (so its audit row survives); any other exception rolls them back.
    """
    if not message.renderer:
        return Rendered(message.subject, message.text_body, message.html_body)
    renderer = renderers.get(message.renderer)
    with transaction.atomic():
        try:
            rendered = renderer.render(message)
        except Cancel as cancel:
            cancelled = cancel
        else:
            # The subject helps staff; the bodies hold a secret and stay out of the database.
            subject = clean_subject(rendered.subject)
            OutboundMessage.objects.filter(pk=message.pk).update(subject=subject)
            message.subject = subject
            return Rendered(subject, rendered.text, rendered.html)
    raise cancelled


def _held(message: OutboundMessage, worker: str) -> QuerySet[OutboundMessage]:
    """The message's row, if ``worker`` still holds it: every status change goes through here.

    A worker that lost its claim (its lease ran out and another worker took the row) must
    not move the row on: releasing it as ``retrying`` while the new holder is sending
    would let a third worker send it too.
    """
    return OutboundMessage.objects.filter(pk=message.pk, status=Status.SENDING,
                                          claimed_by=worker)


def _renew(message: OutboundMessage, worker: str) -> bool:
    return _held(message, worker).update(claimed_until=now() + lease()) == 1


def _release(message: OutboundMessage, worker: str, **fields: Any) -> bool:
    """Write ``fields`` and give up the claim, if still held; True if the row was ours."""
    fields.update(claimed_by="", claimed_until=None)
    for name, value in fields.items():
        setattr(message, name, value)
    return _held(message, worker).update(**fields) == 1


def _finish(message: OutboundMessage, worker: str, status: str, reason: str) -> str:
    if not _release(message, worker, status=status, last_error=reason):
        raise ClaimLost(f"not sent ({status})")
    return status


def _record_failure(message: OutboundMessage, worker: str, error: DeliveryError,
                    started: datetime, *, release: bool = True) -> str:
    """Record a failed attempt; schedule a retry, or give up and tell the renderer."""
    with transaction.atomic():
        message.attempt_count += 1
        DeliveryAttempt.objects.create(
            message=message, started_at=started, finished_at=now(), worker=worker,
            result=(DeliveryAttempt.Result.TRANSIENT if error.transient
                    else DeliveryAttempt.Result.PERMANENT),
            smtp_code=error.code, reply=error.reply[:2000])
        fields: dict[str, Any] = {"attempt_count": message.attempt_count,
                                  "last_error": error.reply[:2000]}
        if not (error.transient and message.attempt_count < message.max_attempts):
            fields["status"] = Status.FAILED
        elif release:
            fields.update(status=Status.RETRYING,
                          next_attempt_at=now() + backoff(message.attempt_count))
        if "status" in fields:
            held = _release(message, worker, **fields)
        else:
            # An interrupted attempt was recorded; this worker keeps the claim and tries now.
            held = _held(message, worker).update(**fields) == 1
            for name, value in fields.items():
                setattr(message, name, value)
        if held and message.status == Status.FAILED and message.renderer:
            _call_hook("failed", message, error.reply)
    if not held:  # the attempt is on record all the same
        raise ClaimLost("an attempt failed")
    return message.status


def _record_success(message: OutboundMessage, worker: str, accepted: Accepted,
                    started: datetime) -> str:
    """Record that the relay accepted ``message``: first its status, then the rest.

    Between the relay's ``250`` and the commit of ``sent``, a worker that dies leaves a
    delivered message in ``sending``, and it goes out again once the lease ends (SMTP
    cannot tell us otherwise). So that one UPDATE, committed on its own, comes first and
    nothing precedes it; the attempt row and the renderer's hook follow in their own
    transaction, whose failure can no longer cause a second send.
    """
    moment = now()
    held = _release(message, worker, status=Status.SENT, sent_at=moment,
                    attempt_count=message.attempt_count + 1, last_error="")
    with transaction.atomic():
        DeliveryAttempt.objects.create(
            message=message, started_at=started, finished_at=moment, worker=worker,
            result=DeliveryAttempt.Result.SENT, smtp_code=accepted.code,
            reply=accepted.reply[:2000])
        if held and message.renderer:
            _call_hook("delivered", message)
    if not held:
        raise ClaimLost("the relay accepted it")
    return Status.SENT


def _call_hook(hook: str, message: OutboundMessage, *args: Any) -> None:
    """Run a renderer hook in a savepoint: its failure must not undo the delivery record.

    Rolling back a ``failed`` status, or the attempt row, because an audit write failed
    would leave the record saying less than what happened.
    """
    try:
        with transaction.atomic():
            getattr(renderers.get(message.renderer), hook)(message, *args)
    except Exception:
        log.exception("renderer hook %s for message %s failed", hook, message.pk)


def _log_outcome(message: OutboundMessage, outcome: str) -> None:
    """Log how a delivery run ended, and count it for /metrics (Redis; no SQL)."""
    counters.count_delivery(outcome, message.sent_at - message.created_at
                            if outcome == Status.SENT and message.sent_at else None)
    # Never the body or subject: a sign-in email's body is a live credential.
    log.info("message %s (%s) to %s: %s after %s attempt(s)%s", message.pk, message.kind,
             message.to, outcome, message.attempt_count,
             f": {message.last_error}" if message.last_error and outcome != Status.SENT else "")
