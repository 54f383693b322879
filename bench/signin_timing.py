"""Benchmark: does "Email me a sign-in link" answer known and unknown addresses alike?

Rule 1 says the response must not reveal, by its time, whether an address has an account.
This posts the real form through Django's full stack (middleware, CSRF, sessions, rate
limits, the outbox write) for known and unknown addresses, interleaved so that machine
noise hits both alike, and prints the medians and their ratio. Loopback only, bounded.

    python bench/signin_timing.py [--rounds 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    rounds = max(10, min(args.rounds, 5000))

    tmp = tempfile.mkdtemp(prefix="portal-bench-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
    os.environ["PORTAL_VAR_DIR"] = tmp
    (Path(tmp) / "static").mkdir()
    os.environ.setdefault("PORTAL_SECRET_KEY", "bench-" + "x" * 40)
    os.environ.setdefault("PORTAL_ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("PORTAL_ALLOW_INSECURE_HTTP", "true")  # plain HTTP, in-process
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.config.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from portal.accounts.services import add_user, create_organization

    call_command("migrate", verbosity=0)
    settings.SIGNIN_RATE_LIMITS = {"address": "1000/15m", "ip": "100000/15m",
                                   "global": "100000/m"}
    org = create_organization(f"Bench {time.time_ns()}", [f"b{time.time_ns()}.example"])
    domain = org.domains.get().domain
    for n in range(rounds):
        add_user(f"known{n}@{domain}", org)

    def post(address: str, n: int) -> float:
        client = Client(REMOTE_ADDR=f"127.0.{n // 250}.{n % 250 + 1}")
        started = time.perf_counter()
        response = client.post("/signin/", {"email": address})
        elapsed = time.perf_counter() - started
        assert response.status_code == 302, response.status_code
        return elapsed

    for n in range(20):  # warm up both paths
        post(f"warm{n}@{domain}", n)
    known: list[float] = []
    unknown: list[float] = []
    for n in range(rounds):
        pair = [("known", f"known{n}@{domain}"), ("unknown", f"nobody{n}@{domain}")]
        if n % 2:
            pair.reverse()
        for kind, address in pair:
            (known if kind == "known" else unknown).append(post(address, n))
    k, u = statistics.median(known), statistics.median(unknown)
    print(f"sign-in link request, {rounds} each, interleaved, "
          f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
    print(f"  known address   median {k * 1000:7.2f} ms   p90 "
          f"{statistics.quantiles(known, n=10)[-1] * 1000:7.2f} ms")
    print(f"  unknown address median {u * 1000:7.2f} ms   p90 "
          f"{statistics.quantiles(unknown, n=10)[-1] * 1000:7.2f} ms")
    print(f"  ratio known/unknown (medians): {k / u:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
