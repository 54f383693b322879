"""Rate limits are exact sliding windows, all or nothing, shared across processes, fail closed.

Every behaviour is checked on both stores (``store``: the database, then Redis).
"""

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
from portal.core.models import RateLimitHit
from portal.core.ratelimit import Rate, RateLimitUnavailable, check_all, hit, ip_subject

ROOT = Path(__file__).resolve().parents[2]
# A moment on a 15-minute (and 1-day) boundary: where a fixed window would start afresh.
MIDNIGHT = datetime(2030, 1, 1, tzinfo=UTC)
ALICE = "alice@northwind.example"


def at(seconds: float) -> Any:
    """Freeze the clock ``seconds`` after MIDNIGHT."""
    return time_machine.travel(MIDNIGHT + timedelta(seconds=seconds), tick=False)


# --- Rate strings


@pytest.mark.parametrize(("text", "limit", "window"), [
    ("5/15m", 5, 900), ("10/s", 10, 1), ("1/d", 1, 86400), ("3/2h", 3, 7200),
    ("600/m", 600, 60), (" 5/m ", 5, 60), ("50/15m", 50, 900), ("1000000/30d", 1000000, 2592000),
])
def test_rate_strings_parse(text: str, limit: int, window: int) -> None:
    assert Rate.parse(text) == Rate(limit, window)


@pytest.mark.parametrize("text", ["", "5", "5/", "/m", "5/x", "five/m", "5/15", "5/m/ip",
                                  "-1/m", "5/-1m", "0/m", "5/0m", "5 / m", "5/m\nx", "5/1.5m",
                                  "\uff15/m", "5/\u0661m", "1000001/m", "1/31d", "99999999/m",
                                  "5/15M", "5/900000s"])
def test_bad_rate_strings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        Rate.parse(text)


def test_a_bad_rate_string_is_refused_before_anything_is_counted(
        database_store: None, scope: str) -> None:
    with pytest.raises(ValueError):
        check_all([(scope, ALICE, "5/m"), (f"{scope}-ip", "203.0.113.9", "5/0m")])
    assert not RateLimitHit.objects.exists()


# --- Sliding windows


def test_limit_holds_and_refusals_are_not_counted(store: str, scope: str) -> None:
    with at(10):
        decisions = [hit(scope, ALICE, "3/m") for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.count for d in decisions] == [1, 2, 3, 3, 3]
    # All three admitted at this instant leave the window together, one minute later.
    assert [d.retry_after for d in decisions] == [0, 0, 0, 60, 60]


def test_window_edge_admits_only_the_limit(store: str, scope: str) -> None:
    # Five in the last second of one fixed 15-minute window and five in the first second
    # of the next: fixed windows admitted all ten, a sliding window admits five.
    admitted = []
    for n in range(5):
        with at(899 + n / 5):
            admitted.append(hit(scope, ALICE, "5/15m").allowed)
    for n in range(5):
        with at(900 + n / 5):
            admitted.append(hit(scope, ALICE, "5/15m").allowed)
    assert admitted == [True] * 5 + [False] * 5
    # The first of them (at 899 s) leaves 900 s later, and not a microsecond earlier.
    with at(1799 - 0.000001):
        assert not hit(scope, ALICE, "5/15m").allowed
    with at(1799):
        assert hit(scope, ALICE, "5/15m").allowed
        assert not hit(scope, ALICE, "5/15m").allowed


def test_at_most_the_limit_in_any_window_under_steady_pressure(store: str, scope: str) -> None:
    # One attempt every 7 seconds for 5 minutes against 4 per minute: every admitted
    # attempt must have at most 3 others admitted in the 60 seconds before it.
    times = []
    for n in range(43):
        with at(n * 7):
            if hit(scope, ALICE, "4/m").allowed:
                times.append(n * 7)
    assert all(sum(1 for t in times if s - 60 < t <= s) <= 4 for s in times)
    assert len(times) >= 4 * 5  # and it is not stingier than the limit


def test_retry_after_is_exact(store: str, scope: str) -> None:
    for moment in (0, 10.25, 20.5):
        with at(moment):
            assert hit(scope, ALICE, "3/m").allowed
    with at(25.5):
        refused = hit(scope, ALICE, "3/m")
    # The attempt at 0 s leaves at 60 s: 34.5 s away, so come back in 35 (rounded up).
    assert (refused.allowed, refused.count, refused.retry_after) == (False, 3, 35)
    with at(59.999999):
        assert hit(scope, ALICE, "3/m").retry_after == 1
    with at(60):
        assert hit(scope, ALICE, "3/m").allowed
        # Next to leave: the attempt at 10.25 s, at 70.25 s.
        assert hit(scope, ALICE, "3/m").retry_after == 11


def test_a_lowered_limit_waits_for_enough_attempts_to_leave(store: str, scope: str) -> None:
    # Five admitted at 0..4 s under 5/15m; the operator lowers it to 3/15m. Room for one
    # more needs three of the five gone: the third leaves at 2 s + 900 s.
    for moment in range(5):
        with at(moment):
            assert hit(scope, ALICE, "5/15m").allowed
    with at(10):
        refused = hit(scope, ALICE, "3/15m")
    assert (refused.allowed, refused.count, refused.retry_after) == (False, 5, 892)
    with at(902):
        assert hit(scope, ALICE, "3/15m").allowed


def test_subjects_scopes_and_windows_are_counted_apart(store: str, scope: str) -> None:
    with at(0):
        assert hit(scope, ALICE, "1/m").allowed
        assert not hit(scope, ALICE, "1/m").allowed
        assert hit(scope, "bob@northwind.example", "1/m").allowed
        assert hit(f"{scope}-other", ALICE, "1/m").allowed
        assert hit(scope, ALICE, "1/h").allowed


# --- All or nothing


def test_a_refused_attempt_is_recorded_in_no_limit(store: str, scope: str) -> None:
    address, ip = (f"{scope}-address", ALICE, "1/m"), (f"{scope}-ip", "203.0.113.9", "3/m")
    with at(45):
        assert check_all([address, ip]).allowed
        refused = check_all([address, ip])
        assert (refused.allowed, refused.count, refused.retry_after) == (False, 1, 60)
        # The IP limit holds only the admitted attempt: two more fit, then it is full.
        assert [hit(*ip).count for _ in range(3)] == [2, 3, 3]
        # And now the IP refuses: the address limit is not spent by that refusal either.
        assert not check_all([(f"{scope}-address", "bob@northwind.example", "1/m"), ip]).allowed
        assert hit(f"{scope}-address", "bob@northwind.example", "1/m").allowed


def test_check_all_refuses_when_any_limit_is_full(store: str, scope: str) -> None:
    with at(0):
        for _ in range(2):
            hit(f"{scope}-ip", "203.0.113.9", "2/h")
        decision = check_all([(f"{scope}-address", ALICE, "5/15m"),
                              (f"{scope}-ip", "203.0.113.9", "2/h")])
    assert not decision.allowed
    assert decision.retry_after == 3600


def test_retry_after_is_that_of_the_slowest_refusing_limit(store: str, scope: str) -> None:
    limits = [(f"{scope}-minute", ALICE, "1/m"), (f"{scope}-hour", ALICE, "1/h")]
    with at(0):
        assert check_all(limits).allowed
    with at(30):
        decision = check_all(limits)
    # Both are full; only when the hourly one frees up can the attempt be admitted.
    assert (decision.allowed, decision.retry_after) == (False, 3570)


def test_the_same_limit_listed_twice_counts_once(store: str, scope: str) -> None:
    with at(0):
        assert check_all([(scope, ALICE, "2/m"), (scope, ALICE, "2/m")]).allowed
        assert hit(scope, ALICE, "2/m").allowed


def test_a_refused_flood_leaves_the_overall_budget_untouched(store: str, scope: str) -> None:
    def attempt(ip: str) -> bool:
        return check_all([(f"{scope}-ip", ip, "5/15m"), (f"{scope}-all", "all", "10/m")]).allowed

    with at(0):
        flood = [attempt("198.51.100.66") for _ in range(1005)]
        assert flood.count(True) == 5
        # 1,000 refusals spent nothing: the other five of the ten overall are still there.
        others = [attempt(f"203.0.113.{n}") for n in range(6)]
    assert others == [True] * 5 + [False]


def test_refusals_for_one_address_do_not_spend_its_allowance(store: str, scope: str) -> None:
    def attempt(ip: str) -> bool:
        return check_all([(f"{scope}-address", ALICE, "5/15m"),
                          (f"{scope}-ip", ip, "3/15m")]).allowed

    with at(0):
        # A stranger's address, already at its limit, asks 100 more times for Alice.
        assert [attempt("198.51.100.66") for _ in range(3)] == [True] * 3
        assert not any(attempt("198.51.100.66") for _ in range(100))
        # Alice's allowance of five has lost only the three that were admitted.
        assert [attempt("203.0.113.7") for _ in range(3)] == [True, True, False]


def test_no_limits_admit_and_count_nothing(database_store: None) -> None:
    assert check_all([]) == ratelimit.Decision(True, 0, 0)
    assert not RateLimitHit.objects.exists()


# --- Client addresses: IPv4 per address, IPv6 per /64


@pytest.mark.parametrize(("ip", "subject"), [
    ("203.0.113.9", "203.0.113.9"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::ffff:203.0.113.9", "203.0.113.9"),
    ("::1", "::/64"),
    (ALICE, ALICE), ("all", "all"), ("unknown", "unknown"), ("", ""),
    ("203.0.113.09", "203.0.113.09"),  # not an address (leading zero): left as text
])
def test_ip_subject_groups_ipv6_by_64_and_keeps_ipv4_addresses(ip: str, subject: str) -> None:
    assert ip_subject(ip) == subject


def test_an_ipv6_client_is_counted_per_64_whatever_address_it_uses(
        store: str, scope: str) -> None:
    with at(0):
        assert [hit(scope, f"2001:db8:1:2::{n:x}", "3/m").allowed for n in range(1, 5)] == [
            True, True, True, False]
        assert hit(scope, "2001:db8:1:3::1", "3/m").allowed  # the next /64 is someone else
        # IPv4 clients are counted per address; the mapped form is the same address.
        assert hit(scope, "203.0.113.9", "1/m").allowed
        assert not hit(scope, "::ffff:203.0.113.9", "1/m").allowed
        assert hit(scope, "203.0.113.10", "1/m").allowed


# --- The database store


def test_database_log_stores_no_address(database_store: None, scope: str) -> None:
    hit(scope, ALICE, "5/m")
    (row,) = RateLimitHit.objects.all()
    assert "alice" not in row.key and "northwind" not in row.key


def test_database_refusal_writes_nothing(database_store: None, scope: str) -> None:
    with at(0):
        hit(scope, ALICE, "1/m")
        before = list(RateLimitHit.objects.values_list("pk", "key", "expires_at_us"))
        assert not hit(scope, ALICE, "1/m").allowed
    assert list(RateLimitHit.objects.values_list("pk", "key", "expires_at_us")) == before


def test_database_housekeeping_removes_expired_rows_a_bounded_batch_at_a_time(
        database_store: None, scope: str) -> None:
    batch = ratelimit.HOUSEKEEPING_BATCH
    with at(0):
        for n in range(batch + 20):
            hit(scope, f"old-{n}", "5/m")
    with at(59):  # nothing has expired yet: nothing is removed
        hit(scope, "new-0", "5/m")
    assert RateLimitHit.objects.count() == batch + 21
    with at(60):
        hit(scope, "new-1", "5/m")
        assert RateLimitHit.objects.count() == 20 + 2
        hit(scope, "new-2", "5/m")
    expected = MIDNIGHT + timedelta(seconds=59 + 60)
    # Only the live rows remain, the oldest of which leaves at 119 s.
    assert RateLimitHit.objects.count() == 3
    assert min(RateLimitHit.objects.values_list("expires_at_us", flat=True)) == (
        (expected - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1))


@pytest.mark.parametrize("limits", [1, 3, 6])
def test_one_decision_takes_a_bounded_number_of_statements(
        database_store: None, scope: str, limits: int,
        django_assert_max_num_queries: Any) -> None:
    rates = [(f"{scope}-{n}", ALICE, "1/m") for n in range(limits)]
    # SAVEPOINT, the locks (PostgreSQL), the tally, the insert, housekeeping, RELEASE:
    # however many limits the decision spans.
    with at(0):
        with django_assert_max_num_queries(6):
            assert check_all(rates).allowed
        # A refusal only locks, reads and lets go.
        with django_assert_max_num_queries(4):
            assert not check_all(rates).allowed


# --- The Redis store


def test_redis_log_expires_with_its_window_and_stores_no_address(
        redis_store: redis.Redis, scope: str) -> None:
    hit(scope, ALICE, "5/h")
    (key,) = redis_store.keys(f"rl:{scope}*")
    assert b"alice" not in key
    assert 0 < redis_store.pttl(key) <= 3601 * 1000
    assert redis_store.zcard(key) == 1


def test_redis_refusal_writes_nothing(redis_store: redis.Redis, scope: str) -> None:
    with at(0):
        hit(scope, ALICE, "1/m")
        (key,) = redis_store.keys(f"rl:{scope}*")
        before = redis_store.zrange(key, 0, -1, withscores=True)
        assert not hit(scope, ALICE, "1/m").allowed
    assert redis_store.zrange(key, 0, -1, withscores=True) == before


def test_redis_log_is_trimmed_to_its_window(redis_store: redis.Redis, scope: str) -> None:
    for moment in (0, 30, 61):
        with at(moment):
            hit(scope, ALICE, "5/m")
    (key,) = redis_store.keys(f"rl:{scope}*")
    assert redis_store.zcard(key) == 2  # the attempt at 0 s left when the one at 61 s came


def test_a_redis_that_forgot_the_script_still_decides(redis_store: redis.Redis,
                                                      scope: str) -> None:
    redis_store.script_flush()  # as after a Redis restart
    with at(0):
        assert [hit(scope, ALICE, "1/m").allowed for _ in range(2)] == [True, False]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def test_unreachable_redis_raises_instead_of_allowing(settings: Any, scope: str) -> None:
    from tests.core.conftest import use_store

    use_store(settings, f"redis://127.0.0.1:{_closed_port()}/0")
    try:
        with pytest.raises(RateLimitUnavailable):
            hit(scope, ALICE, "5/m")
        with pytest.raises(RateLimitUnavailable):
            check_all([(scope, ALICE, "5/m"), (f"{scope}-all", "all", "600/m")])
    finally:
        ratelimit._redis.cache_clear()


# --- Across processes: N processes race for the last slots; exactly the limit is admitted.

RACE_AT = MIDNIGHT + timedelta(seconds=30)
WORKER = textwrap.dedent("""
    import sys
    from datetime import datetime, UTC

    import django
    django.setup()
    import time_machine
    from portal.core.ratelimit import check_all

    scope, attempts, rate, overall = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    limits = [(scope, "alice@northwind.example", rate), (scope + "-all", "all", overall)]
    print("ready", flush=True)
    sys.stdin.readline()  # all processes start together
    with time_machine.travel(datetime.fromisoformat(sys.argv[5]), tick=False):
        admitted = sum(check_all(limits).allowed for _ in range(attempts))
    print(admitted, flush=True)
""")
PROCESSES = 6
ATTEMPTS_EACH = 10
LIMIT = 25
TAKEN_BEFORE = 20  # the race is for the last five slots
OVERALL = "1000/m"


def _race(scope: str, variables: dict[str, str]) -> list[int]:
    """Fill all but the last slots, release the workers at once, return what each got."""
    with time_machine.travel(RACE_AT, tick=False):
        for _ in range(TAKEN_BEFORE):
            assert check_all([(scope, ALICE, f"{LIMIT}/m"),
                              (f"{scope}-all", "all", OVERALL)]).allowed
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(variables, DJANGO_SETTINGS_MODULE="portal.config.settings_test",
               PYTHONPATH=str(ROOT / "src"))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, scope, str(ATTEMPTS_EACH),
                                 f"{LIMIT}/m", OVERALL, RACE_AT.isoformat()], env=env, cwd=ROOT,
                                text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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
def test_processes_racing_for_the_last_slots_get_exactly_those_on_postgres(
        on_postgres: None, transactional_db: None, settings: Any, scope: str) -> None:
    from tests.core.conftest import use_store

    use_store(settings, "")
    admitted = _race(scope, {"DATABASE_URL": _database_url()})
    assert sum(admitted) == LIMIT - TAKEN_BEFORE
    # Both logs hold the admitted attempts and nothing else: the 55 refusals left no trace.
    per_key = sorted(RateLimitHit.objects.values_list("key", flat=True).distinct())
    assert [RateLimitHit.objects.filter(key=key).count() for key in per_key] == [LIMIT, LIMIT]


def test_processes_racing_for_the_last_slots_get_exactly_those_on_redis(
        redis_store: redis.Redis, redis_url: str, scope: str) -> None:
    admitted = _race(scope, {"REDIS_URL": redis_url})
    assert sum(admitted) == LIMIT - TAKEN_BEFORE
    keys = redis_store.keys(f"rl:{scope}*")
    assert sorted(redis_store.zcard(key) for key in keys) == [LIMIT, LIMIT]
