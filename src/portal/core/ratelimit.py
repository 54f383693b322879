"""Rate limits that hold across processes and machines.

Counters live in Redis when ``REDIS_URL`` is set and in the database otherwise; never in
process memory, where each of N web processes would allow N times the limit. Limits are
fixed windows written as readable strings: ``"5/15m"`` is five per fifteen minutes.
If the store is unreachable the limiter raises: a sign-in door that silently stops counting
is worse than one that answers an error.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connection

from portal.core.clock import now

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE.match(text.strip())
        if not match:
            raise ValueError(f"rate {text!r}: expected N/[M]unit, e.g. 5/15m")
        count, multiple, unit = match.groups()
        return cls(int(count), int(multiple or 1) * _UNITS[unit])


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after: int  # seconds until the window resets; 0 when allowed


def _window(rate: Rate) -> tuple[int, int]:
    stamp = math.floor(now().timestamp())
    start = stamp - stamp % rate.window
    return start, start + rate.window - stamp


def _key(scope: str, subject: str, rate: Rate, start: int) -> str:
    # Subjects (addresses, IPs) are hashed: the store need not hold who asked.
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"rl:{scope}:{rate.window}:{start}:{digest}"


@lru_cache(maxsize=1)
def _redis():  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(settings.CONFIG.redis_url, socket_timeout=2,
                                socket_connect_timeout=2)


def _bump_redis(key: str, ttl: int) -> int:
    pipe = _redis().pipeline()
    pipe.incr(key)
    pipe.expire(key, ttl + 1, nx=True)
    count, _ = pipe.execute()
    return int(count)


def _bump_database(key: str, ttl: int) -> int:
    from portal.core.models import RateLimitCounter

    table = RateLimitCounter._meta.db_table
    expires = now() + timedelta(seconds=ttl + 1)
    with connection.cursor() as cursor:
        # One statement, atomic on SQLite and PostgreSQL alike.
        cursor.execute(
            f"INSERT INTO {table} (key, count, expires_at) VALUES (%s, 1, %s) "  # noqa: S608
            f"ON CONFLICT (key) DO UPDATE SET count = {table}.count + 1 RETURNING count",
            [key, expires])
        count = int(cursor.fetchone()[0])
    if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
        RateLimitCounter.objects.filter(expires_at__lt=now()).delete()
    return count


def hit(scope: str, subject: str, rate: str | Rate) -> Decision:
    """Count one attempt by ``subject`` under ``scope`` and say whether it is within ``rate``."""
    parsed = Rate.parse(rate) if isinstance(rate, str) else rate
    start, remaining = _window(parsed)
    key = _key(scope, subject, parsed, start)
    if settings.CONFIG.redis_url:
        count = _bump_redis(key, remaining)
    else:
        count = _bump_database(key, remaining)
    allowed = count <= parsed.limit
    return Decision(allowed, count, 0 if allowed else remaining)


def check_all(limits: list[tuple[str, str, str]]) -> Decision:
    """Count against every ``(scope, subject, rate)``; refuse if any is exceeded.

    Every limit is counted even after one refuses, so an attacker cannot stay under the
    per-IP limit by being refused first on another.
    """
    decisions = [hit(scope, subject, rate) for scope, subject, rate in limits]
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return Decision(False, max(d.count for d in refused),
                        max(d.retry_after for d in refused))
    return Decision(True, 0, 0)
