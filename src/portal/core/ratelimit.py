"""Rate limits that hold exactly, across processes and machines, and cost a refusal nothing.

A limit such as ``"5/15m"`` admits at most five attempts in *any* fifteen minutes: each
key keeps a log of the attempts it admitted (a Redis sorted set, or rows of
``RateLimitHit`` in the database), trimmed to the window. There is no window edge to
exploit, as there was with fixed windows (five at 14:59 and five more at 15:00).

``check_all`` decides over several limits at once, all or nothing: an attempt is admitted
only if every limit has room, and is then recorded in every one; a refused attempt is
recorded nowhere. A flood that is refused therefore spends no shared budget (the overall
limit, an address's allowance), and cannot lock out the people it is not.

Logs live in Redis when ``REDIS_URL`` is set and in the database otherwise, never in
process memory, where each of N web processes would allow N times the limit. The
check-and-record is atomic across processes: one Lua script in Redis, one short
transaction in the database. If Redis cannot be reached the limiter raises
``RateLimitUnavailable`` (database errors propagate as they are): a door that silently
stops counting is worse than one that answers an error (decision 0004).

A subject that is an IP address is counted by its network (``ip_subject``): IPv4 per
address, IPv6 per /64, so that callers pass the client address as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection, transaction

from portal.core.clock import now
from portal.core.rates import Rate
from portal.metrics import counters

__all__ = ["Decision", "Rate", "RateLimitUnavailable", "check_all", "hit", "ip_subject"]

# (scope, subject, rate): "signin-ip", "203.0.113.9", "50/15m".
Limit = tuple[str, str, str | Rate]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SECOND_US = 1_000_000
# Expired rows of any key removed by one admitted decision: more than it inserts (one per
# limit), so the table drains, and few enough that no decision does unbounded work.
HOUSEKEEPING_BATCH = 100


class RateLimitUnavailable(Exception):
    """The log store (Redis) could not be reached, so nothing can be admitted."""


@dataclass(frozen=True)
class Decision:
    """Whether an attempt was admitted, and when to come back if it was not."""

    allowed: bool
    # Admitted attempts in the deciding window: this one included when admitted (the
    # highest among the limits); when refused, those of the limit that sets retry_after.
    count: int
    # Whole seconds until this attempt would be admitted, rounded up; 0 when admitted.
    retry_after: int
    # When refused: the scope of the limit that sets retry_after ("signin-address"), which
    # audit rows and /metrics name; empty when admitted.
    limit: str = ""


@dataclass(frozen=True)
class _Window:
    """One limit of one decision: its store key, its rate and the scope it counts."""

    key: str
    rate: Rate
    scope: str

    @property
    def window_us(self) -> int:
        return self.rate.window * _SECOND_US


@dataclass(frozen=True)
class _Tally:
    """What the store found for one window before recording anything."""

    count: int  # admitted attempts still inside the window
    # When full: the moment (µs since the epoch) the attempt that must leave before
    # another fits leaves the window; None while there is room.
    frees_at_us: int | None


def ip_subject(ip: str) -> str:
    """Return the rate-limit subject of an address: an IPv4 address itself, an IPv6 /64.

    An IPv6 subscriber is given at least a /64 and may use any of its 2**64 addresses, so
    counting IPv6 per address would give one client as many allowances as it likes. An
    IPv4-mapped IPv6 address (``::ffff:203.0.113.9``) counts as its IPv4 address. Text
    that is not an IP address (an email address, ``"all"``, ``"unknown"``) is returned
    unchanged; ``check_all`` passes every subject through here.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # int() drops any zone index (fe80::1%eth0): the network is what counts.
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


def _key(scope: str, subject: str, rate: Rate) -> str:
    # Subjects (addresses, IPs) are keyed hashes: the store need not hold who asked, and a
    # plain hash of an address is reversed by hashing a list of addresses. The window is
    # part of the key, the count is not: changing a limit keeps the log it applies to.
    digest = hmac.new(settings.SECRET_KEY.encode(), f"ratelimit:{ip_subject(subject)}".encode(),
                      hashlib.sha256).hexdigest()[:32]
    return f"rl:{scope}:{rate.window}:{digest}"


def _now_us() -> int:
    # Integer microseconds, computed without floats: a float timestamp rounds, and an
    # attempt could then leave its window a microsecond early.
    return (now() - _EPOCH) // _MICROSECOND


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CONFIG.redis_url, socket_timeout=2,
                                socket_connect_timeout=2)


# One script, so the decision over every key is atomic (Redis runs a script alone) and
# costs one round trip. Times are passed and returned as strings: Lua 5.1 would print a
# 16-digit microsecond count as "1.8934560000000e+15" and lose its last digits.
# KEYS: one sorted set per limit (member: an attempt; score: its time in µs).
# ARGV[1]: this attempt's member; ARGV[2]: its time; then for the i-th key, ARGV[3i] the
# limit, ARGV[3i+1] the cut-off (attempts at or before it have left the window) and
# ARGV[3i+2] the key's lifetime in ms. Returns {admitted, counts, times of the attempts
# that must leave before another fits ('' where there is room)}.
_DECIDE = """
local full, counts, frees = false, {}, {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[3 * i + 1])
  local count = redis.call('ZCARD', key)
  counts[i] = count
  frees[i] = ''
  if count >= limit then
    full = true
    frees[i] = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')[2]
  end
end
if not full then
  for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, ARGV[2], ARGV[1])
    redis.call('PEXPIRE', key, ARGV[3 * i + 2])
  end
end
return {full and 0 or 1, counts, frees}
"""


def _decide_redis(windows: Sequence[_Window], at_us: int) -> tuple[bool, list[_Tally]]:
    args: list[str | int] = [f"{at_us}-{secrets.token_hex(8)}", str(at_us)]
    for window in windows:
        # The key outlives its newest attempt by a second, so an idle key disappears.
        lifetime_ms = (window.rate.window + 1) * 1000
        args += [window.rate.limit, str(at_us - window.window_us), lifetime_ms]
    try:
        client = _redis()
        # register_script only hashes the text; the call is EVALSHA (EVAL once after a
        # Redis restart has forgotten the script).
        admitted, counts, frees = client.register_script(_DECIDE)(
            keys=[w.key for w in windows], args=args, client=client)
    except redis.RedisError as exc:
        raise RateLimitUnavailable(f"rate-limit store unreachable: {exc}") from exc
    tallies = [
        # A stored score is an attempt's time; it leaves its window one window later.
        _Tally(int(count), int(float(free)) + window.window_us if free else None)
        for window, count, free in zip(windows, counts, frees, strict=True)]
    return bool(admitted), tallies


def _lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


def _decide_database(windows: Sequence[_Window], at_us: int) -> tuple[bool, list[_Tally]]:
    from portal.core.models import RateLimitHit

    quote = connection.ops.quote_name
    table = quote(RateLimitHit._meta.db_table)
    key, expires = quote("key"), quote("expires_at_us")
    postgres = connection.vendor == "postgresql"
    # One scalar pair per key: how many attempts are inside the window, and when full,
    # when the newest `limit`-th attempt leaves (the one that must go before another fits).
    # Only quoted names and loop numbers are formatted in; every value is a bound parameter.
    live = f"FROM {table} WHERE {key} = %s AND {expires} > %s"
    tally_sql = " UNION ALL ".join(
        f"SELECT {n}, (SELECT COUNT(*) {live}), "
        f"(SELECT {expires} {live} ORDER BY {expires} DESC LIMIT 1 OFFSET %s)"
        for n in range(len(windows)))
    tally_params: list[str | int] = []
    for window in windows:
        tally_params += [window.key, at_us, window.key, at_us, window.rate.limit - 1]
    # Bounded housekeeping: expired rows of any key, HOUSEKEEPING_BATCH at most. On
    # PostgreSQL rows another decision is already deleting are skipped, not waited for.
    skip_locked = " FOR UPDATE SKIP LOCKED" if postgres else ""
    housekeeping_sql = (
        f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
        f"WHERE {expires} <= %s LIMIT {HOUSEKEEPING_BATCH}{skip_locked})")
    with transaction.atomic(), connection.cursor() as cursor:
        if postgres:
            # One advisory lock per key, taken in sorted order so two decisions over
            # overlapping keys cannot deadlock; held until the transaction ends. SQLite
            # needs none: BEGIN IMMEDIATE (config/env.py) already holds its write lock.
            cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k",
                           [sorted({_lock_id(w.key) for w in windows})])
        cursor.execute(tally_sql, tally_params)
        rows = sorted(cursor.fetchall())
        tallies = [_Tally(int(count), int(free) if free is not None else None)
                   for _, count, free in rows]
        admitted = all(tally.frees_at_us is None for tally in tallies)
        if admitted:
            RateLimitHit.objects.bulk_create(
                RateLimitHit(key=w.key, expires_at_us=at_us + w.window_us) for w in windows)
            cursor.execute(housekeeping_sql, [at_us])
    return admitted, tallies


def _windows(limits: Iterable[Limit]) -> list[_Window]:
    """Parse every rate (``ValueError`` before anything is counted) and drop repeats."""
    windows: dict[str, _Window] = {}
    for scope, subject, rate in limits:
        parsed = Rate.parse(rate) if isinstance(rate, str) else rate
        window = _Window(_key(scope, subject, parsed), parsed, scope)
        # The same limit listed twice is one limit: one attempt must not count twice.
        windows.setdefault(window.key, window)
    return list(windows.values())


def check_all(limits: Iterable[Limit], *, metered: bool = True) -> Decision:
    """Admit one attempt if every ``(scope, subject, rate)`` has room, and record it in all.

    All or nothing: a refused attempt is recorded in none of the limits, so a refused
    flood spends nobody's budget. ``retry_after`` is exact: the seconds (rounded up) until
    the attempt that must leave first, in the slowest of the refusing limits, has left.
    Call it outside ``transaction.atomic``: with the database store the record is part of
    the caller's transaction, and a rollback would quietly un-count the attempt.
    A refusal is counted for ``/metrics`` under ``Decision.limit`` (with Redis; see
    ``portal.metrics.counters``); ``metered=False`` leaves out budgets that bound the
    portal's own work (audit rows of refusals), not what people may do.
    Raises ``RateLimitUnavailable`` when Redis cannot be reached, and ``ValueError`` for a
    rate string that does not parse.
    """
    windows = _windows(limits)
    if not windows:
        return Decision(True, 0, 0)
    at_us = _now_us()
    decide = _decide_redis if settings.CONFIG.redis_url else _decide_database
    admitted, tallies = decide(windows, at_us)
    if admitted:
        return Decision(True, max(tally.count for tally in tallies) + 1, 0)
    wait_us, count, scope = max((tally.frees_at_us - at_us, tally.count, window.scope)
                                for window, tally in zip(windows, tallies, strict=True)
                                if tally.frees_at_us is not None)
    if metered:
        counters.count_refusal(scope)
    return Decision(False, count, max(1, -(-wait_us // _SECOND_US)), scope)


def hit(scope: str, subject: str, rate: str | Rate, *, metered: bool = True) -> Decision:
    """Admit one attempt by ``subject`` under ``scope`` if ``rate`` has room.

    This is ``check_all`` with one limit: same atomicity, same exceptions.
    """
    return check_all([(scope, subject, rate)], metered=metered)
