"""Benchmark: what one rate-limit decision costs, admitted and refused, on each store.

Runs ``check_all`` over the three limits of a link request (address, IP, overall) and
prints the median and 95th percentile per decision: admitted ones (a lock, one read, one
insert, bounded housekeeping in the database; one script in Redis) and refused ones (a
lock and one read; nothing is written). Loopback only, bounded.

    python bench/ratelimit_decisions.py [--rounds 2000] [--database-url URL] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    args = parser.parse_args()
    rounds = max(10, min(args.rounds, 20000))

    tmp = tempfile.mkdtemp(prefix="portal-bench-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["PORTAL_VAR_DIR"] = tmp
    os.environ.setdefault("PORTAL_SECRET_KEY", "bench-" + "x" * 40)
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.config.settings"
    import django

    django.setup()
    from django.core.management import call_command

    from portal.core.ratelimit import check_all

    call_command("migrate", verbosity=0)
    run = uuid.uuid4().hex[:8]

    def decide(n: int, overall: str) -> tuple[float, bool]:
        limits = [(f"bench-{run}-address", f"person{n}@bench.example", "5/15m"),
                  (f"bench-{run}-ip", f"127.0.{n // 250 % 250}.{n % 250 + 1}", "50/15m"),
                  (f"bench-{run}-all", "all", overall)]
        started = time.perf_counter()
        allowed = check_all(limits).allowed
        return time.perf_counter() - started, allowed

    # Admitted: the overall limit has room for every round.
    admitted = [decide(n, f"{rounds}/h") for n in range(rounds)]
    # Refused: the same overall key is now full (its limit lowered to what it holds).
    refused = [decide(n, "1/h") for n in range(rounds)]
    assert all(ok for _, ok in admitted) and not any(ok for _, ok in refused)
    store = "Redis" if args.redis_url else os.environ["DATABASE_URL"].split(":", 1)[0]
    for name, samples in (("admitted", admitted), ("refused", refused)):
        times = sorted(t for t, _ in samples)
        print(f"{store:10} {name:8} median {statistics.median(times) * 1e6:7.0f} µs   "
              f"p95 {times[int(len(times) * 0.95)] * 1e6:7.0f} µs   ({len(times)} decisions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
