"""Rate limits hold across processes, reset with their window, and never fail open."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import time_machine
from django.db import connection

from portal.core import ratelimit
from portal.core.models import RateLimitCounter
from portal.core.ratelimit import Rate, RateLimitUnavailable, check_all, hit

ROOT = Path(__file__).resolve().parents[2]
# A moment on a 15-minute (and 1-day) boundary, so windows start exactly here.
MIDNIGHT = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "limit", "window"), [
    ("5/15m", 5, 900), ("10/s", 10, 1), ("1/d", 1, 86400), ("3/2h", 3, 7200),
    ("600/m", 600, 60), (" 5/m ", 5, 60), ("30/15m", 30, 900),
])
def test_rate_strings_parse(text: str, limit: int, window: int) -> None:
    assert Rate.parse(text) == Rate(limit, window)


@pytest.mark.parametrize("text", ["", "5", "5/", "/m", "5/x", "five/m", "5/15", "5/m/ip",
                                  "-1/m", "5/-1m", "0/m", "5/0m", "5 / m", "5/m\nx", "5/1.5m"])
def test_bad_rate_strings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(text)


def test_hit_refuses_a_bad_rate_string_before_counting(database_store: None, scope: str) -> None:
    with pytest.raises(ValueError):
        hit(scope, "alice@northwind.example", "5/0m")
    assert not RateLimitCounter.objects.exists()


def test_limit_holds(store: str, scope: str) -> None:
    with time_machine.travel(MIDNIGHT + timedelta(seconds=10), tick=False):
        decisions = [hit(scope, "alice@northwind.example", "3/m") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.count for d in decisions] == [1, 2, 3, 4, 5]
    assert [d.retry_after for d in decisions] == [0, 0, 0, 50, 50]


def test_window_resets_at_its_boundary_not_before(store: str, scope: str) -> None:
    subject = "alice@northwind.example"
    with time_machine.travel(MIDNIGHT, tick=False) as clock:
        assert [hit(scope, subject, "2/15m").allowed for _ in range(3)] == [True, True, False]
        clock.shift(timedelta(minutes=14, seconds=59))
        refused = hit(scope, subject, "2/15m")
        assert (refused.allowed, refused.retry_after) == (False, 1)
        clock.shift(timedelta(seconds=1))
        fresh = hit(scope, subject, "2/15m")
        assert (fresh.allowed, fresh.count) == (True, 1)


def test_subjects_and_scopes_are_counted_apart(store: str, scope: str) -> None:
    with time_machine.travel(MIDNIGHT, tick=False):
        assert hit(scope, "alice@northwind.example", "1/m").allowed
        assert not hit(scope, "alice@northwind.example", "1/m").allowed
        assert hit(scope, "bob@northwind.example", "1/m").allowed
        assert hit(f"{scope}-other", "alice@northwind.example", "1/m").allowed


def test_check_all_counts_every_limit_even_after_one_refuses(store: str, scope: str) -> None:
    limits = [(f"{scope}-address", "alice@northwind.example", "1/m"),
              (f"{scope}-ip", "203.0.113.9", "10/m"),
              (f"{scope}-global", "all", "10/m")]
    with time_machine.travel(MIDNIGHT + timedelta(seconds=45), tick=False):
        first = check_all(limits)
        second = check_all(limits)
        third = check_all(limits)
        # The address limit refused the last two, yet the IP and global counters still moved:
        # an attacker cannot save per-IP budget by being refused on the address first.
        assert hit(f"{scope}-ip", "203.0.113.9", "10/m").count == 4
        assert hit(f"{scope}-global", "all", "10/m").count == 4
    assert first.allowed
    assert (second.allowed, second.count, second.retry_after) == (False, 2, 15)
    assert (third.allowed, third.count) == (False, 3)


def test_check_all_refuses_when_any_limit_is_exceeded(store: str, scope: str) -> None:
    with time_machine.travel(MIDNIGHT, tick=False):
        for _ in range(2):
            hit(f"{scope}-ip", "203.0.113.9", "2/h")
        decision = check_all([(f"{scope}-address", "alice@northwind.example", "5/15m"),
                              (f"{scope}-ip", "203.0.113.9", "2/h")])
    assert not decision.allowed
    assert decision.retry_after == 3600


def test_database_counter_stores_no_address(database_store: None, scope: str) -> None:
    hit(scope, "alice@northwind.example", "5/m")
    (row,) = RateLimitCounter.objects.all()
    assert "alice" not in row.key and "northwind" not in row.key
    assert row.count == 1


def test_database_housekeeping_removes_expired_counters(database_store: None, scope: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with time_machine.travel(MIDNIGHT, tick=False):
        hit(scope, "old", "5/m")
    monkeypatch.setattr(ratelimit.random, "random", lambda: 0.0)
    with time_machine.travel(MIDNIGHT + timedelta(minutes=5), tick=False):
        hit(scope, "new", "5/m")
    assert RateLimitCounter.objects.count() == 1
    (row,) = RateLimitCounter.objects.all()
    assert row.expires_at == MIDNIGHT + timedelta(minutes=6, seconds=1)


def test_redis_counter_expires_with_its_window_and_stores_no_address(
        redis_store: redis.Redis, scope: str) -> None:
    hit(scope, "alice@northwind.example", "5/h")
    (key,) = redis_store.keys(f"rl:{scope}*")
    assert b"alice" not in key
    assert 0 < redis_store.ttl(key) <= 3601


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def test_unreachable_redis_raises_instead_of_allowing(settings: Any, scope: str) -> None:
    from tests.core.conftest import use_store

    use_store(settings, f"redis://127.0.0.1:{_closed_port()}/0")
    try:
        with pytest.raises(RateLimitUnavailable):
            hit(scope, "alice@northwind.example", "5/m")
        with pytest.raises(RateLimitUnavailable):
            check_all([(scope, "alice@northwind.example", "5/m")])
    finally:
        ratelimit._redis.cache_clear()


# --- Across processes: N processes share one counter and never allow more than the limit.

WORKER = textwrap.dedent("""
    import sys
    from datetime import datetime, UTC

    import django
    django.setup()
    import time_machine
    from portal.core.ratelimit import hit

    scope, hits, rate = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print("ready", flush=True)
    sys.stdin.readline()  # all processes start counting together
    with time_machine.travel(datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC), tick=False):
        allowed = sum(hit(scope, "alice@northwind.example", rate).allowed for _ in range(hits))
    print(allowed, flush=True)
""")
PROCESSES = 6
HITS_EACH = 10
LIMIT = 25


def _race(scope: str, variables: dict[str, str]) -> list[int]:
    """Start the workers, release them at once, and return how many hits each was allowed."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(variables, DJANGO_SETTINGS_MODULE="portal.config.settings_test",
               PYTHONPATH=str(ROOT / "src"))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, scope, str(HITS_EACH),
                                 f"{LIMIT}/m"], env=env, cwd=ROOT, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE) for _ in range(PROCESSES)]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready", worker.communicate(timeout=60)
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            results.append(int(out.strip()))
        return results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)


def _database_url() -> str:
    db = connection.settings_dict
    return (f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}")


@pytest.mark.postgres
def test_processes_never_exceed_the_limit_together_on_postgres(
        on_postgres: None, transactional_db: None, settings: Any, scope: str) -> None:
    from tests.core.conftest import use_store

    use_store(settings, "")
    allowed = _race(scope, {"DATABASE_URL": _database_url()})
    assert sum(allowed) == LIMIT
    assert RateLimitCounter.objects.get().count == PROCESSES * HITS_EACH


def test_processes_never_exceed_the_limit_together_on_redis(
        redis_store: redis.Redis, redis_url: str, scope: str) -> None:
    allowed = _race(scope, {"REDIS_URL": redis_url})
    assert sum(allowed) == LIMIT
    (key,) = redis_store.keys(f"rl:{scope}*")
    assert int(redis_store.get(key) or 0) == PROCESSES * HITS_EACH

