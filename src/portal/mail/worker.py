"""Deliver the outbox: claim due messages, render them, hand them to the relay, record results.

Safe with any number of workers on any number of machines. A claim is one statement that
moves up to ``BATCH_SIZE`` due rows to ``sending`` and stamps them with this worker's name
and a lease: on PostgreSQL ``UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)
RETURNING``, so concurrent workers take different rows and none waits on another; on
SQLite a select and a guarded update in one transaction (SQLite's write lock serializes
claims). A worker that dies mid-send leaves ``sending`` rows whose lease runs out; the next
claim takes them again and records the interrupted attempt, so a message is retried,
never lost.

A batch is rendered together (one transaction, so a renderer can look its rows up in one
query each), then sent one message at a time over one SMTP connection. Each message's
``sent`` is recorded right after its own ``250``, alone; the attempt rows and the
renderers' "delivered" hooks of the batch are written together after the last message
(see docs/mail-delivery.md, "Batches and one connection").
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Q, QuerySet

from portal.core.clock import now
from portal.core.moments import format_moment
from portal.mail import renderers
from portal.mail.compose import compose, dkim_key
from portal.mail.errors import DeliveryError
from portal.mail.models import DeliveryAttempt, OutboundMessage
from portal.mail.outbox import clean_subject, from_domain, new_message_id
from portal.mail.renderers import Cancel, Rendered
from portal.mail.smtp import Accepted, Sender
from portal.mail.wakeup import Wakeup
from portal.metrics import counters

log = logging.getLogger("portal.mail.worker")
Status = OutboundMessage.Status

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
BACKOFF_JITTER = 0.2  # ±20%: workers that failed together do not retry together
# Messages one claim takes. Small enough that a batch is sent within seconds (each one's
# lease is renewed before sending once a quarter of it has passed) and that a stopping
# worker gives few back; large enough that the claim, the render and the records cost a
# fraction of a query per message.
BATCH_SIZE = 20
# A message rendered with its batch is rendered again just before sending once this old,
# so what is sent (and the renderer's checks: an expired sign-in link is not sent) is
# judged at send time, not when a long batch began.
RENDER_FRESH_SECONDS = 5.0


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
    # The status before the claim (queued, retrying or sending): a stopping worker puts
    # the claims it did not start back as they were.
    was: str = Status.QUEUED


def due(moment: datetime) -> Q:
    return (Q(status__in=[Status.QUEUED, Status.RETRYING], next_attempt_at__lte=moment)
            | Q(status=Status.SENDING, claimed_until__lt=moment)
            | Q(status=Status.SENDING, claimed_until__isnull=True))


def claim_next(worker: str, cutoff: datetime | None = None) -> Claim | None:
    """Take the oldest message due by ``cutoff`` (default now) for ``worker``, or None."""
    claims = claim_batch(worker, 1, cutoff)
    return claims[0] if claims else None


def claim_batch(worker: str, limit: int = BATCH_SIZE,
                cutoff: datetime | None = None) -> list[Claim]:
    """Take up to ``limit`` of the oldest messages due by ``cutoff`` for ``worker``."""
    moment = cutoff or now()
    candidates = (OutboundMessage.objects.filter(due(moment))
                  .order_by("next_attempt_at", "id")[:max(1, limit)])
    claimed_at = now()
    until = claimed_at + lease()
    if connection.vendor == "postgresql":
        rows = _claim_postgresql(candidates, worker, until)
    else:
        rows = _claim_locked(candidates, moment, worker, until)
    claims = []
    for message, was, previous in sorted(rows, key=lambda row: (row[0].next_attempt_at,
                                                                row[0].pk)):
        interrupted_by = (previous or "?") if was == Status.SENDING else None
        claims.append(Claim(message, interrupted_by, claimed_at, was))
    missing = [claim.message for claim in claims if not claim.message.message_id]
    for message in missing:  # rows queued before Message-IDs were made at enqueue time
        message.message_id = new_message_id()
        OutboundMessage.objects.filter(pk=message.pk, message_id="").update(
            message_id=message.message_id)
    return claims


def _claim_postgresql(candidates: QuerySet[OutboundMessage], worker: str,
                      until: datetime) -> list[tuple[OutboundMessage, str, str]]:
    """One statement: lock due rows (skipping rows others are claiming), stamp, return them.

    The ``picked`` rows carry the status and holder from before the update, so a row taken
    over from a dead worker is known as such.
    """
    picked_sql, picked_params = candidates.values("id", "status", "claimed_by").query \
        .sql_with_params()
    table = OutboundMessage._meta.db_table
    columns = ", ".join(f'm."{field.column}"' for field in OutboundMessage._meta.concrete_fields)
    sql = (f'UPDATE "{table}" AS m SET "status" = %s, "claimed_by" = %s, '  # noqa: S608
           '"claimed_until" = %s '
           f"FROM ({picked_sql} FOR UPDATE SKIP LOCKED) AS picked "
           f'WHERE m."id" = picked."id" '
           f'RETURNING {columns}, picked."status" AS was, picked."claimed_by" AS previous')
    rows = OutboundMessage.objects.raw(sql, [Status.SENDING, worker, until, *picked_params])
    return [(row, getattr(row, "was"), getattr(row, "previous")) for row in rows]  # noqa: B009


def _claim_locked(candidates: QuerySet[OutboundMessage], moment: datetime, worker: str,
                  until: datetime) -> list[tuple[OutboundMessage, str, str]]:
    """The same for databases whose writers are serialized (SQLite): read, then update.

    The update repeats the due condition, so a row another worker claimed in between is
    not taken twice; on SQLite a concurrent claim makes this transaction fail instead.
    """
    with transaction.atomic():
        found = list(candidates)
        if not found:
            return []
        before = [(row, row.status, row.claimed_by) for row in found]
        taken = OutboundMessage.objects.filter(due(moment), pk__in=[row.pk for row in found]) \
            .update(status=Status.SENDING, claimed_by=worker, claimed_until=until)
        if taken != len(found):
            mine = set(OutboundMessage.objects.filter(
                pk__in=[row.pk for row in found], claimed_by=worker, claimed_until=until,
            ).values_list("pk", flat=True))
            before = [entry for entry in before if entry[0].pk in mine]
    for row, _, _ in before:
        row.status, row.claimed_by, row.claimed_until = Status.SENDING, worker, until
    return before


def release_unstarted(claims: Sequence[Claim], worker: str) -> int:
    """Give back claims this worker will not start (it is stopping); return how many.

    Each row goes back as it was: queued or retrying rows are due again at once for any
    worker; a row taken over from a dead worker is left expired in that worker's name, so
    whoever takes it next still records the interrupted attempt.
    """
    given = 0
    for claim in claims:
        if claim.was == Status.SENDING:
            fields: dict[str, Any] = {"claimed_by": claim.interrupted_by,
                                      "claimed_until": claim.claimed_at}
        else:
            fields = {"status": claim.was, "claimed_by": "", "claimed_until": None}
        given += _held(claim.message, worker).update(**fields)
    return given


class ClaimLost(Exception):
    """This worker's lease ran out and another worker holds the message now."""


def process(claim: Claim, worker: str, sender: Sender) -> str:
    """Carry one claimed message to its next status and return that status.

    Returns ``sending`` when the claim was lost on the way: the status is then the
    business of the worker that holds the row now.
    """
    [(_, outcome)] = deliver(worker, [claim], sender)
    return outcome


@dataclass
class _Records:
    """What a batch writes once its last message is sent: attempt rows, delivered hooks."""

    attempts: list[DeliveryAttempt]
    delivered: list[OutboundMessage]

    def flush(self) -> None:
        """Write them in one transaction; if that fails, each hook on its own after all.

        Nothing here can cause a second copy: every ``sent`` is already committed.
        """
        if not (self.attempts or self.delivered):
            return
        try:
            with transaction.atomic():
                DeliveryAttempt.objects.bulk_create(self.attempts)
                for name, messages in _by_renderer(self.delivered).items():
                    renderer = renderers.get(name)
                    if hasattr(renderer, "delivered_many"):
                        renderer.delivered_many(messages)
                    else:
                        for message in messages:
                            renderer.delivered(message)
        except Exception:
            log.exception("recording a batch failed; recording its messages one by one")
            with transaction.atomic():
                for attempt in self.attempts:
                    attempt.pk = None
                DeliveryAttempt.objects.bulk_create(self.attempts)
                for message in self.delivered:
                    _call_hook("delivered", message)
        self.attempts, self.delivered = [], []


def _by_renderer(messages: Sequence[OutboundMessage]) -> dict[str, list[OutboundMessage]]:
    groups: dict[str, list[OutboundMessage]] = {}
    for message in messages:
        if message.renderer:
            groups.setdefault(message.renderer, []).append(message)
    return groups


def deliver(worker: str, claims: Sequence[Claim], sender: Sender,
            stop: threading.Event | None = None) -> list[tuple[OutboundMessage, str]]:
    """Carry a batch of claims through render, send and record; return each outcome.

    Claims not yet started when ``stop`` is set are given back (``release_unstarted``)
    and left out of the result.
    """
    records = _Records([], [])
    outcomes: list[tuple[OutboundMessage, str]] = []
    try:
        if stop is not None and stop.is_set():
            release_unstarted(claims, worker)
            return outcomes
        # Rendered together: every message that will get as far as rendering.
        moment = now()
        contents = _render_batch([claim.message for claim in claims
                                  if not _gives_up(claim) and not _late(claim.message, moment)])
        for n, claim in enumerate(claims):
            if n and stop is not None and stop.is_set():
                release_unstarted(claims[n:], worker)
                break
            outcome = _guarded(claim, worker, _carry, claim, worker, sender,
                               contents.get(claim.message.pk), records)
            outcomes.append((claim.message, outcome))
    finally:
        records.flush()
    return outcomes


def _gives_up(claim: Claim) -> bool:
    """True if recording the interrupted attempt of ``claim`` uses up its attempts."""
    message = claim.message
    return claim.interrupted_by is not None and message.attempt_count + 1 >= message.max_attempts


def _late(message: OutboundMessage, moment: datetime) -> bool:
    return message.not_after is not None and moment >= message.not_after


def _guarded(claim: Claim, worker: str, step: Any, *args: Any) -> str:
    try:
        result: str = step(*args)
    except ClaimLost as lost:
        log.warning("message %s: %s, but worker %s no longer held it; left to the worker "
                    "that does", claim.message.pk, lost, worker)
        return Status.SENDING
    return result


def _expire_if_late(message: OutboundMessage, worker: str, moment: datetime) -> str | None:
    if not _late(message, moment):
        return None
    assert message.not_after is not None
    # Pointless now (a sign-in link that would arrive dead): record it, send nothing.
    outcome = _finish(message, worker, Status.EXPIRED,
                      f"Not sent: it would have arrived after its deadline, "
                      f"{format_moment(message.not_after, UTC)}.")
    if message.renderer:
        _call_hook("expired", message)
    return outcome


@dataclass(frozen=True)
class _Content:
    rendered: Rendered | Cancel
    at: float  # time.monotonic() of the render


def _render_batch(messages: Sequence[OutboundMessage]) -> dict[int, _Content]:
    """Render the late-rendered messages of a batch, each renderer once, in one transaction.

    A renderer with ``render_many`` gets all its messages at once; if it raises, nothing
    of it is kept and its messages are rendered one by one at send time instead, so one
    bad message does not hold up the others.
    """
    contents: dict[int, _Content] = {}
    for name, group in _by_renderer(messages).items():
        try:
            renderer = renderers.get(name)
        except LookupError:
            continue  # rendered (and failed) one by one
        render_many = getattr(renderer, "render_many", None)
        if render_many is None:
            continue
        try:
            with transaction.atomic():
                results = render_many(group)
        except Exception:
            log.exception("rendering a batch of %s messages failed; rendering them one by "
                          "one", name)
            continue
        at = time.monotonic()
        for message in group:
            if message.pk in results:
                contents[message.pk] = _Content(results[message.pk], at)
    return contents


def _carry(claim: Claim, worker: str, sender: Sender, content: _Content | None,
           records: _Records) -> str:
    message = claim.message
    started = now()
    if claim.interrupted_by is not None:
        error = DeliveryError(f"Worker {claim.interrupted_by} stopped before finishing this "
                              "attempt; it may or may not have reached the relay.",
                              transient=True)
        outcome = _record_failure(message, worker, error, started, release=False)
        if outcome == Status.FAILED:
            return outcome
    late = _expire_if_late(message, worker, now())
    if late is not None:
        return late
    try:
        if content is not None and isinstance(content.rendered, Cancel):
            raise content.rendered  # final: rendering again would record the refusal twice
        if content is None or time.monotonic() - content.at > RENDER_FRESH_SECONDS:
            rendered = _content(message)
        else:
            assert isinstance(content.rendered, Rendered)
            rendered = content.rendered
    except Cancel as cancel:
        status = Status.EXPIRED if cancel.expired else Status.CANCELLED
        return _finish(message, worker, status, f"Not sent: {cancel.reason}")
    except Exception as exc:
        # A renderer bug or a renderer this worker does not know yet (deploy skew):
        # retried, and bounded by max_attempts like any transient failure.
        log.exception("rendering message %s failed", message.pk)
        return _record_failure(message, worker, DeliveryError(
            f"Could not render the message: {type(exc).__name__}: {exc}", transient=True), started)
    message.subject = clean_subject(rendered.subject)
    try:
        composed = compose(to=message.to, subject=message.subject, text=rendered.text,
                           html=rendered.html, message_id=message.message_id, date=now())
    except Exception as exc:  # e.g. an unreadable DKIM key: an operator can fix it
        log.exception("composing message %s failed", message.pk)
        return _record_failure(message, worker, DeliveryError(
            f"Could not build the message: {type(exc).__name__}: {exc}", transient=True), started)
    # Fencing costs a commit, so it is skipped when the claim is seconds old; after a slow
    # render or a long batch (or anything near the lease) it proves the row is still ours
    # before sending. Either way at least three quarters of a lease, several times the
    # longest SMTP conversation, is left when the conversation starts.
    if now() - claim.claimed_at > lease() / 4 and not _renew(message, worker):
        # Our lease ran out and another worker holds the row now: sending as well would
        # deliver twice.
        raise ClaimLost("not sent")
    try:
        accepted = sender.send(composed)
    except DeliveryError as error:
        return _record_failure(message, worker, error, started)
    return _record_success(message, worker, accepted, started, records)


def deliver_due(limit: int | None = None, batch_size: int = BATCH_SIZE) -> int:
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
            size = batch_size if limit is None else min(batch_size, limit - handled)
            claims = claim_batch(worker, size, cutoff)
            for message, outcome in deliver(worker, claims, sender):
                _log_outcome(message, outcome)
                handled += 1
            if len(claims) < size:
                break  # nothing else was due by the cutoff (or others hold it)
    finally:
        sender.close()
    return handled


def prepare() -> None:
    """Do once per process what every message would otherwise pay for on first use.

    The URL map (sign-in links are reversed from it), each renderer's templates, the From
    address and the DKIM key are loaded before the first claim, so no message's lease or
    latency includes them.
    """
    from django.urls import get_resolver

    try:
        get_resolver().url_patterns  # noqa: B018 - imports every urls module once
        from_domain()
        dkim_key()
        for renderer in renderers.all_renderers():
            warm = getattr(renderer, "prepare", None)
            if warm is not None:
                warm()
    except Exception:
        # Not fatal here: each message then meets the same problem and records it as a
        # failed attempt an operator can see (an unreadable DKIM key, say).
        log.exception("preparing the worker failed; messages will report the problem")


class Worker:
    """The long-running delivery loop behind ``portal worker``."""

    def __init__(self, *, name: str | None = None, poll_interval: float = 1.0,
                 batch_size: int = BATCH_SIZE) -> None:
        self.name = name or worker_name()
        self.poll_interval = poll_interval
        self.batch_size = batch_size

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; the message in hand is always finished first."""
        sender = Sender()
        wakeup = Wakeup()
        prepare()
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
                    sender.close()  # QUIT: do not hold an idle relay connection open
                    wakeup.wait(self.poll_interval, stop)
        finally:
            sender.close()
            wakeup.close()
            connection.close()
            log.info("worker %s stopped", self.name)

    def run_once(self, stop: threading.Event, sender: Sender) -> int:
        handled = 0
        while not stop.is_set():
            claims = claim_batch(self.name, self.batch_size)
            if not claims:
                break
            for message, outcome in deliver(self.name, claims, sender, stop):
                _log_outcome(message, outcome)
                handled += 1
        return handled


def _content(message: OutboundMessage) -> Rendered:
    """Return what to send: the stored content, or a late render in its own transaction.

    Writes a renderer makes before raising ``Cancel`` commit together with the new
    status (so its audit row survives); any other exception rolls them back. The rendered
    subject is stored with the outcome (``sent`` or the failed attempt), for staff; the
    bodies hold a secret and stay out of the database.
    """
    if not message.renderer:
        return Rendered(message.subject, message.text_body, message.html_body)
    renderer = renderers.get(message.renderer)
    with transaction.atomic():
        try:
            return renderer.render(message)
        except Cancel as cancel:
            cancelled = cancel
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
                                  "last_error": error.reply[:2000],
                                  "subject": message.subject}
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
                    started: datetime, records: _Records) -> str:
    """Record that the relay accepted ``message``: first its status, then the rest.

    Between the relay's ``250`` and the commit of ``sent``, a worker that dies leaves a
    delivered message in ``sending``, and it goes out again once the lease ends (SMTP
    cannot tell us otherwise). So that one UPDATE, committed on its own, comes first and
    nothing precedes it; the attempt row and the renderer's hook follow with the rest of
    the batch (``_Records``), whose failure can no longer cause a second send.
    """
    moment = now()
    held = _release(message, worker, status=Status.SENT, sent_at=moment,
                    attempt_count=message.attempt_count + 1, last_error="",
                    subject=message.subject)
    records.attempts.append(DeliveryAttempt(
        message=message, started_at=started, finished_at=moment, worker=worker,
        result=DeliveryAttempt.Result.SENT, smtp_code=accepted.code,
        reply=accepted.reply[:2000]))
    if not held:
        raise ClaimLost("the relay accepted it")
    if message.renderer:
        records.delivered.append(message)
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
