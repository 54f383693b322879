"""Count what happens at the door, shared by every process, without touching the database.

``/metrics`` must show one number for the whole portal, however many gunicorn workers and
``portal worker`` processes run on however many machines, so nothing is counted in process
memory. With ``REDIS_URL`` set, every count is one field of one Redis hash (``KEY``),
moved by ``HINCRBY`` in a pipeline: a sign-in costs no SQL statement for its counting (the
sign-in requests have tight query budgets), and one short round trip to Redis per event.

Rules this module keeps:

- Events are counted when their transaction commits (``transaction.on_commit``): a rolled
  back sign-in counts nothing, as it leaves no audit row.
- Counting never breaks what it counts: a Redis error is logged and the count is lost,
  the sign-in goes on (the rate limiter, not this, is what refuses when Redis is down).
- Labels come from fixed sets (``METHODS``, tag tables, scope names in the code), never
  from what a client sent: a provider name typed into a URL must not create a series.
- Without ``REDIS_URL`` nothing is counted here at all: ``portal.metrics.collect`` then
  reads the same figures from the audit trail and the outbox at scrape time (decision
  0026), so the embedded default adds no write to any request either.

The classification of audit tags (``classify``) is shared by both: the Redis counts and
the audit-trail aggregate say the same thing by the same rule.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from portal.audit.tags import Tag

log = logging.getLogger("portal.metrics")

# One hash holds every count; fields are "family|label|label". Version in the name: a
# change of layout starts a fresh hash instead of misreading an old one.
KEY = "portal:metrics:v1"
SEP = "|"

SUCCESS, FAILURE = "success", "failure"
# The method labels a sign-in can carry; anything else is counted as "other".
METHODS = frozenset({"email", "email_code", "email_approval", "google", "microsoft",
                     "passkey", "enrolment", "other"})
# Successes: the tags finish_sign_in is given; their row carries the method it was given.
SIGN_IN_SUCCESSES = frozenset({Tag.LINK_REDEEMED, Tag.OIDC_SUCCEEDED, Tag.PASSKEY_SIGNED_IN,
                               Tag.PASSKEY_ENROLMENT_USED})
# Refused uses of a way in, and the method each refuses (None: read from the row).
SIGN_IN_FAILURES: Mapping[Tag, str | None] = {
    Tag.LINK_EXPIRED_USE: "email", Tag.LINK_REUSED: "email", Tag.LINK_SUPERSEDED_USE: "email",
    Tag.LINK_REVOKED_USE: "email", Tag.LINK_UNKNOWN: "email", Tag.LINK_REFUSED_USE: "email",
    Tag.LINK_SAME_BROWSER_ONLY: "email", Tag.LINK_CODE_FAILED: "email_code",
    Tag.LINK_APPROVAL_FAILED: "email_approval", Tag.OIDC_FAILED: None,
    Tag.PASSKEY_FAILED: None,
}
# Refusals by a rate limit that were audited; the row names the limit (``limit``).
RATE_LIMITED = frozenset({Tag.LINK_RATE_LIMITED, Tag.PASSKEY_RATE_LIMITED})
# Every tag /metrics reads, in Redis or in the audit trail.
METERED_TAGS = frozenset({*SIGN_IN_SUCCESSES, *SIGN_IN_FAILURES, *RATE_LIMITED,
                          Tag.LINK_REQUESTED})

# Delivery latency (created -> accepted by the relay), upper bounds in seconds. A sign-in
# link is worth little after a minute and nothing after 14 (healthz's limit).
DELIVERY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 840.0)
# What a delivery run of the worker can end in (portal.mail.worker statuses).
MAIL_OUTCOMES = frozenset({"sent", "retrying", "failed", "expired", "cancelled"})


def field(family: str, *labels: str) -> str:
    """Return the hash field of one series: ``sign_ins|email|success``."""
    return SEP.join((family, *labels))


def _method(raw: object) -> str:
    return raw if isinstance(raw, str) and raw in METHODS else "other"


def classify(tag: str, detail: Mapping[str, Any]) -> str | None:
    """Return the field an audit event moves, or None for an event /metrics ignores.

    ``detail`` is the event's detail (``method``, ``provider``, ``stage``, ``limit``).
    """
    if tag == Tag.LINK_REQUESTED:
        return field("link_requests")
    if tag in SIGN_IN_SUCCESSES:
        return field("sign_ins", _method(detail.get("method")), SUCCESS)
    if tag in SIGN_IN_FAILURES:
        method = SIGN_IN_FAILURES[Tag(tag)]
        if tag == Tag.PASSKEY_FAILED:
            # A refused registration is not a failed sign-in; an enrolment link's is.
            stage = detail.get("stage")
            if stage not in ("signin", "enrolment"):
                return None
            method = "passkey" if stage == "signin" else "enrolment"
        return field("sign_ins", _method(method or detail.get("provider")), FAILURE)
    if tag in RATE_LIMITED:
        return field("refusals", _limit(detail.get("limit")))
    return None


def _limit(raw: object) -> str:
    # Scope names are constants of the code (``signin-address``), never client input; a row
    # written before rows named their limit says "unknown".
    return raw if isinstance(raw, str) and raw and len(raw) <= 40 else "unknown"


@functools.lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def redis_client() -> redis.Redis | None:
    """Return the Redis client counts go to, or None on the embedded default."""
    url = settings.CONFIG.redis_url
    return _client(url) if url else None


def add(increments: Mapping[str, float]) -> None:
    """Add ``increments`` (field -> amount) to the shared counts, in one round trip.

    Never raises: a count lost to a Redis error is logged, the caller's work goes on.
    """
    client = redis_client()
    if client is None or not increments:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for name, amount in increments.items():
            if isinstance(amount, int):
                pipe.hincrby(KEY, name, amount)
            else:
                pipe.hincrbyfloat(KEY, name, amount)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("metrics: counts %s lost: %s", sorted(increments), exc)


def _after_commit(increments: dict[str, float]) -> None:
    transaction.on_commit(functools.partial(add, increments), robust=True)


def count_event(tag: str, detail: Mapping[str, Any]) -> None:
    """Count one audit event when its transaction commits (``record_event`` calls this)."""
    if not settings.CONFIG.redis_url:
        return  # the embedded default: collect reads the audit trail instead
    if tag in RATE_LIMITED:
        return  # counted by the limiter itself (count_refusal), audited or not
    name = classify(tag, detail)
    if name is not None:
        _after_commit({name: 1})


def count_refusal(limit: str) -> None:
    """Count one attempt refused by the rate limit named ``limit`` (``signin-address``).

    Every refusal, audited or not: the audit trail bounds its refusal rows under a flood,
    this count does not. Refusals happen outside transactions, so it is counted now.
    """
    if settings.CONFIG.redis_url:
        add({field("refusals", _limit(limit)): 1})


def delivery_bucket(latency: timedelta) -> str:
    """Return the bucket label (upper bound, or ``+Inf``) a delivery latency falls in."""
    seconds = latency.total_seconds()
    for bound in DELIVERY_BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


def count_delivery(outcome: str, latency: timedelta | None) -> None:
    """Count one delivery run of the worker; ``latency`` is created -> sent, when sent."""
    if not settings.CONFIG.redis_url or outcome not in MAIL_OUTCOMES:
        return
    increments: dict[str, float] = {field("mail", outcome): 1}
    if latency is not None:
        increments[field("delivery_bucket", delivery_bucket(latency))] = 1
        increments[field("delivery_sum")] = max(latency.total_seconds(), 0.0)
    _after_commit(increments)
