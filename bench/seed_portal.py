"""Benchmark data for the portal's bench database: people, ready links, tickets, filler rows.

Run by ``bench/run.py`` with the portal's virtualenv and the bench stack's environment (it
refuses a database whose name does not start with ``bench_``). Links and tickets are made
the way the worker and the link page make them (``tokens.hash_token``, the ticket's signed
value), so the portal cannot tell them from mailed ones; each belongs to a person of its
own, because a sign-in revokes that person's other open links.

    python bench/seed_portal.py users 30000
    python bench/seed_portal.py links FIRST COUNT OUT [--tickets]  # "token binding" lines
    python bench/seed_portal.py fill TOTAL    # filler rows up to TOTAL, then VACUUM ANALYZE
    python bench/seed_portal.py lookup 500    # time the link's lookup query alone (JSON)
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

DOMAIN = "bench.example"


def address(n: int) -> str:
    return f"b{n}@{DOMAIN}"


def users(count: int) -> None:
    from portal.accounts.models import Membership, Organization, User
    from portal.accounts.services import create_organization

    org = (Organization.objects.filter(name="Bench").first()
           or create_organization("Bench", [DOMAIN]))
    people = [User(email=address(n)) for n in range(count)]
    for person in people:
        person.set_unusable_password()
    User.objects.bulk_create(people, batch_size=2000)
    ids = dict(User.objects.filter(email__endswith="@" + DOMAIN).values_list("email", "id"))
    Membership.objects.bulk_create([Membership(user_id=ids[p.email], organization=org)
                                    for p in people], batch_size=2000)


def links(first: int, count: int, out: Path, tickets: bool) -> None:
    from django.conf import settings
    from django.core import signing

    from portal.accounts.models import User
    from portal.core.clock import now
    from portal.signin import tokens
    from portal.signin.flows.magic_link import TICKET_SALT
    from portal.signin.models import SignInRequest

    emails = [address(n) for n in range(first, first + count)]
    ids = dict(User.objects.filter(email__in=emails).values_list("email", "id"))
    moment = now()
    expires = moment + timedelta(seconds=settings.MAGIC_LINK_TTL_SECONDS)
    made = []
    for email in emails:
        token, binding = tokens.generate_token(), tokens.generate_binding()
        made.append((token, binding, SignInRequest(
            email=email, created_at=moment, expires_at=expires, user_id=ids[email],
            delivery=SignInRequest.Delivery.SENT, sent_at=moment,
            token_hash=tokens.hash_token(token), binding_hash=tokens.hash_binding(binding),
            approval_number=tokens.generate_number(), ip="127.0.0.1", user_agent="bench")))
    SignInRequest.objects.bulk_create([row for _, _, row in made], batch_size=2000)
    with out.open("w") as file:
        for token, binding, row in made:
            if tickets:
                ticket = signing.dumps({"id": row.pk, "hash": row.token_hash}, salt=TICKET_SALT)
                file.write(f"{ticket}\n")
            else:
                file.write(f"{token} {binding}\n")


FILL_SQL = """
INSERT INTO signin_signinrequest (
    email, created_at, expires_at, delivery, decline_reason, token_hash, code_hmac,
    link_seed, code_attempts, approval_number, approval_attempts, approved_user_agent,
    refusal, binding_hash, next_url, user_agent, consumed_user_agent, sent_at, consumed_at)
SELECT 'fill' || n || '@fill.example', now() - interval '1 day', now() - interval '23 hours',
       'sent', '', encode(sha256(('fill-token-' || n)::bytea), 'hex'), '', '', 0, '00', 0, '',
       '', encode(sha256(('fill-binding-' || n)::bytea), 'hex'), '/', 'bench', 'bench',
       now() - interval '1 day', now() - interval '1 day'
FROM generate_series(%s::integer, %s::integer) AS n
"""


def fill(total: int) -> int:
    from django.db import connection

    from portal.signin.models import SignInRequest

    have = SignInRequest.objects.count()
    start = SignInRequest.objects.filter(email__endswith="@fill.example").count()
    step = 200_000
    for low in range(start, start + max(0, total - have), step):
        high = min(low + step, start + total - have) - 1
        with connection.cursor() as cursor:
            cursor.execute(FILL_SQL, [low, high])
    with connection.cursor() as cursor:
        # This machine's PostgreSQL runs with autovacuum off: statistics come only from here.
        cursor.execute("VACUUM ANALYZE signin_signinrequest")
        cursor.execute("VACUUM ANALYZE accounts_user")
    return SignInRequest.objects.count()


def lookup(rounds: int) -> dict[str, object]:
    """Time the query a link's page runs to find its request (``_find``), on filler rows.

    The same ORM query, by the SHA-256 of a token that exists, ``rounds`` times in one
    process; with PostgreSQL's plan for it. CPU contention moves these numbers less than
    a full request's, so they say more about how the lookup grows with the table.
    """
    import hashlib
    import random
    import statistics
    import time

    from django.db import connection

    from portal.signin.models import SignInRequest

    fillers = SignInRequest.objects.filter(email__endswith="@fill.example").count()
    if fillers:
        hashes = [hashlib.sha256(f"fill-token-{random.randrange(fillers)}".encode()).hexdigest()  # noqa: S311
                  for _ in range(rounds)]
    else:
        # The seeded links alone already reach this size: look up some of theirs.
        hashes = list(SignInRequest.objects.exclude(token_hash="").order_by("?")
                      .values_list("token_hash", flat=True)[:rounds])
    times = []
    for token_hash in hashes:
        started = time.perf_counter()
        found = SignInRequest.objects.select_related("user").filter(token_hash=token_hash).first()
        times.append((time.perf_counter() - started) * 1e6)
        assert found is not None
    query = SignInRequest.objects.select_related("user").filter(token_hash=hashes[0])
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = " / ".join(row[0].strip() for row in cursor.fetchall())
    times.sort()
    return {"rows": SignInRequest.objects.count(), "rounds": rounds,
            "p50_us": statistics.median(times), "p99_us": times[int(0.99 * (len(times) - 1))],
            "plan": plan}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("users").add_argument("count", type=int)
    link = sub.add_parser("links")
    link.add_argument("first", type=int)
    link.add_argument("count", type=int)
    link.add_argument("out", type=Path)
    link.add_argument("--tickets", action="store_true")
    sub.add_parser("fill").add_argument("total", type=int)
    sub.add_parser("lookup").add_argument("rounds", type=int)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    name = str(settings.DATABASES["default"]["NAME"])
    if not name.startswith("bench_"):
        raise SystemExit(f"refusing to seed {name!r}: only bench_* databases")
    if args.command == "users":
        users(min(args.count, 200_000))
    elif args.command == "links":
        links(args.first, min(args.count, 100_000), args.out, args.tickets)
    elif args.command == "lookup":
        import json

        print(json.dumps(lookup(max(10, min(args.rounds, 10_000)))))
    else:
        print(fill(min(args.total, 2_000_000)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
