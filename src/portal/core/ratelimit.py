"""Rate limits that hold across processes and machines.

Counters live in Redis when ``REDIS_URL`` is set and in the database otherwise; never in
process memory, where each of N web processes would allow N times the limit. Limits are
fixed windows written as readable strings: ``"5/15m"`` is five per fifteen minutes.
If the store is unreachable the limiter raises ``RateLimitUnavailable`` (database errors
propagate as they are): a sign-in door that silently stops counting is worse than one that
answers an error, so callers turn it into a "try again shortly" page, never an "allowed".
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import random
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection

from portal.core.clock import now

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"(\d+)/(\d*)([smhd])")


class RateLimitUnavailable(Exception):
    """The counter store (Redis) could not be reached, so nothing can be allowed."""


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = _RATE.fullmatch(text.strip())
        if not match:
            raise ValueError(f"rate {text!r}: expected N/[M]unit, e.g. 5/15m")
        count, multiple, unit = match.groups()
        # A zero window would divide by zero; a zero limit is a switch, not a rate.
        if int(count) < 1 or (multiple and int(multiple) < 1):
            raise ValueError(f"rate {text!r}: the count and the window must be at least 1")
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
    # Subjects (addresses, IPs) are keyed hashes: the store need not hold who asked, and a
    # plain hash of an address is reversed by hashing a list of addresses.
    digest = hmac.new(settings.SECRET_KEY.encode(), f"ratelimit:{subject}".encode(),
                      hashlib.sha256).hexdigest()[:32]
    return f"rl:{scope}:{rate.window}:{start}:{digest}"


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CONFIG.redis_url, socket_timeout=2,
                                socket_connect_timeout=2)


def _bump_redis(key: str, ttl: int) -> int:
    try:
        # MULTI/EXEC: the counter and its expiry are set together, so no key outlives its
        # window even if this process dies between the two commands.
        pipe = _redis().pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ttl + 1, nx=True)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        raise RateLimitUnavailable(f"rate-limit store unreachable: {exc}") from exc
    return int(count)


def _bump_database(key: str, ttl: int) -> int:
    from portal.core.models import RateLimitCounter

    quote = connection.ops.quote_name
    table, key_col, count_col, expires_col = (quote(name) for name in (
        RateLimitCounter._meta.db_table, "key", "count", "expires_at"))
    # Stored as the ORM stores it (naive UTC text on SQLite), so the housekeeping query's
    # comparison below reads the same format.
    expires = connection.ops.adapt_datetimefield_value(now() + timedelta(seconds=ttl + 1))
    with connection.cursor() as cursor:
        # One statement, atomic on SQLite and PostgreSQL alike: two processes never read
        # the same count, because the increment happens under the row's lock.
        cursor.execute(
            f"INSERT INTO {table} ({key_col}, {count_col}, {expires_col}) "  # noqa: S608
            f"VALUES (%s, 1, %s) ON CONFLICT ({key_col}) "
            f"DO UPDATE SET {count_col} = {table}.{count_col} + 1 RETURNING {count_col}",
            [key, expires])
        row = cursor.fetchone()
        assert row is not None  # RETURNING always yields the row written
        count = int(row[0])
    if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
        RateLimitCounter.objects.filter(expires_at__lt=now()).delete()
    return count


def ip_subject(ip: str) -> str:
    """Return what a client address is counted as: IPv4 per address, IPv6 per /64.

    One IPv6 customer line is usually a whole /64; counting single addresses there would
    give one client 2**64 allowances.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def hit(scope: str, subject: str, rate: str | Rate) -> Decision:
    """Count one attempt by ``subject`` under ``scope`` and say whether it is within ``rate``.

    Call it outside ``transaction.atomic``: with the database store the count is part of
    the caller's transaction, and a rollback would quietly un-count the attempt.
    Raises ``RateLimitUnavailable`` when Redis cannot be reached, and ``ValueError`` for a
    rate string that does not parse.
    """
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
    return Decision(True, max((d.count for d in decisions), default=0), 0)
