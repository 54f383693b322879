"""What ``/healthz`` reports: can email sign-in work right now?

Email sign-in needs the database (every step writes a row), Redis when it is configured
(rate limits fail closed without it, docs/decisions/0004), and a worker that empties the
outbox before a link would arrive dead. Each is checked on every call; nothing is cached,
so an outage shows at the next probe.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection
from django.db.models import Count, Min

from portal.core.clock import now
from portal.mail.models import OutboundMessage
from portal.signin.flows.magic_link import MIN_LIFE_ON_SEND

Status = OutboundMessage.Status
# Messages still to be delivered: not yet tried, being sent, or waiting to be retried.
WAITING = (Status.QUEUED, Status.SENDING, Status.RETRYING)
# A probe must answer quickly even when Redis does not.
REDIS_TIMEOUT_SECONDS = 1.0


def queue_limit() -> timedelta:
    """Return how long a message may wait: past it, a sign-in link would arrive dead.

    The worker sends no link with less than ``MIN_LIFE_ON_SEND`` left (rule 5), so a
    sign-in email queued longer than the link lifetime minus that is never sent.
    """
    return timedelta(seconds=settings.MAGIC_LINK_TTL_SECONDS) - MIN_LIFE_ON_SEND


@dataclass(frozen=True)
class Health:
    database: bool
    redis: bool | None  # None: REDIS_URL is not set
    waiting: int | None  # None: the database could not be asked
    oldest_waiting: timedelta | None

    @property
    def mail_late(self) -> bool:
        return self.oldest_waiting is not None and self.oldest_waiting > queue_limit()

    @property
    def problems(self) -> list[str]:
        """Say, one sentence each, why email sign-in cannot work; empty when it can."""
        found = []
        if not self.database:
            found.append("The database does not answer.")
        if self.redis is False:
            found.append("Redis does not answer: email sign-in refuses every request.")
        if self.mail_late:
            found.append("The oldest queued email has waited longer than a sign-in link "
                         "lives: is a worker running, and does the relay accept mail?")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, object]:
        limit = int(queue_limit().total_seconds())
        oldest = None if self.oldest_waiting is None else int(self.oldest_waiting.total_seconds())
        return {
            "status": "ok" if self.ok else "error",
            "database": "ok" if self.database else "unreachable",
            "redis": {None: "not configured", True: "ok", False: "unreachable"}[self.redis],
            "mail_queue": {
                "status": "unknown" if self.waiting is None else "late" if self.mail_late
                else "ok",
                "waiting": self.waiting, "oldest_seconds": oldest, "limit_seconds": limit},
            "problems": self.problems,
        }


@functools.lru_cache(maxsize=4)
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return False
    return True


def _redis_answers() -> bool | None:
    url = settings.CONFIG.redis_url
    if not url:
        return None
    try:
        return bool(_redis_client(url).ping())
    except (redis.RedisError, OSError):
        return False


def _mail_queue() -> tuple[int, timedelta | None]:
    found = OutboundMessage.objects.filter(status__in=WAITING).aggregate(
        waiting=Count("id"), oldest=Min("created_at"))
    oldest = found["oldest"]
    return found["waiting"], (None if oldest is None else max(now() - oldest, timedelta(0)))


def check() -> Health:
    """Check the database, Redis (when configured) and the age of the oldest queued email."""
    database = _database_answers()
    waiting, oldest = _mail_queue() if database else (None, None)
    return Health(database=database, redis=_redis_answers(), waiting=waiting,
                  oldest_waiting=oldest)
