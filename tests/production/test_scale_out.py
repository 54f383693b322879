"""Two web machines and two workers behave as one portal (issue 14, "a scale-out test").

Through the real processes of ``tests/support/scale.py`` (two `portal serve` masters, two
`portal worker`s, one PostgreSQL, one Redis): a couple of hundred people sign in, each
asking on one web process and opening the link on the other. Every email leaves exactly
once (counted at the SMTP server by Message-ID), every link works exactly once (a second
use, on the other process, is refused), one address's rate limit is spent across both
processes together, and ``/metrics`` on either process adds it all up to the same numbers.
PostgreSQL pass only, like the other production tests.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email.utils import parseaddr

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.audit.tags import Tag
from tests.signin.magic import LINK, text_of
from tests.support.proxy import StackClient
from tests.support.scale import ScaleOut, scale_out  # noqa: F401 - the module's stack
from tests.support.smtp import SMTPServer

pytestmark = [pytest.mark.postgres]

PEOPLE = 200
SOURCES = 40  # client addresses 127.0.2.1-40, five people each: well inside 50 per address
THREADS = 8
ADDRESS_LIMIT = 5  # SIGNIN_LIMIT_PER_ADDRESS's default


def _ask(stack: ScaleOut, client: StackClient, web: int, email: str) -> int:
    stack.on(client, web)
    response = client.form("/signin/", {"email": email})
    assert response.status_code in (302, 429), response.text[:300]
    return response.status_code


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _wait_drained(stack: ScaleOut, timeout: float = 30.0) -> None:
    """Wait (bounded) until no email waits in the outbox."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.sql("SELECT count(*) FROM mail_outboundmessage WHERE status IN "
                     "('queued', 'sending', 'retrying')") == [(0,)]:
            return
        time.sleep(0.2)
    raise AssertionError("the outbox did not drain:\n" + stack.describe())


def test_two_web_processes_and_two_workers_behave_as_one(
        scale_out: ScaleOut, smtp: SMTPServer) -> None:  # noqa: F811
    stack = scale_out
    domain = f"{stack.unique('scale')}.example"
    made = stack.portal("addorg", "Scale Freight", "--domain", domain, "--auto-join")
    assert made.returncode == 0, made.stdout + made.stderr
    people = [f"person{n}@{domain}" for n in range(PEOPLE)]
    clients = [StackClient(stack.web_url(0), f"127.0.2.{n % SOURCES + 1}", stack.web_url(0))
               for n in range(PEOPLE)]

    # Ask on one process...
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        asked = list(pool.map(lambda n: _ask(stack, clients[n], n % 2, people[n]),
                              range(PEOPLE)))
    assert Counter(asked) == {302: PEOPLE}

    # ...every email arrives once, from either worker...
    received = smtp.wait_for(PEOPLE, timeout=45)
    _wait_drained(stack)
    message_ids = Counter(r.message["Message-ID"] for r in received)
    assert len(message_ids) == PEOPLE and set(message_ids.values()) == {1}
    links = {}
    for r in received:
        match = LINK.search(text_of(r))
        assert match, "no sign-in link in the email"
        links[parseaddr(r.message["To"])[1]] = match.group(0).split("://", 1)[1].split("/", 1)[1]
    assert sorted(links) == sorted(people)

    # ...and the link works on the other process, once.
    def use(n: int) -> tuple[int, str, int, str]:
        client, path = clients[n], "/" + links[people[n]]
        first = stack.on(client, (n + 1) % 2).get(path)
        again = stack.on(client, n % 2).get(path)
        return (first.status_code, first.headers.get("Location", ""), again.status_code,
                again.headers.get("Location", ""))

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        used = list(pool.map(use, range(PEOPLE)))
    assert Counter((s, loc) for s, loc, _, _ in used) == {(302, "/"): PEOPLE}
    assert Counter((s, loc) for _, _, s, loc in used) == {(302, "/signin/link-problem/"): PEOPLE}
    counts = dict(stack.sql("SELECT tag, count(*) FROM audit_authevent WHERE email LIKE %s "
                            "GROUP BY tag", [f"%@{domain}"]))
    assert counts[Tag.LINK_REDEEMED.value] == PEOPLE
    assert counts[Tag.LINK_REUSED.value] == PEOPLE

    # One address's allowance is one, whichever process counts it: five strangers' requests
    # alternate between the processes, and the sixth is refused (an address nobody owns, so
    # the count of sent emails above stays exact).
    stranger = f"nobody@{stack.unique('limited')}.example"
    limited = [_ask(stack, stack.client_of(0, f"127.0.3.{n + 1}"), n % 2, stranger)
               for n in range(ADDRESS_LIMIT + 1)]
    assert limited == [302] * ADDRESS_LIMIT + [429]
    _wait_drained(stack)
    assert len(smtp.messages) == PEOPLE  # nothing sent twice, late or to the stranger

    # /metrics: both processes read the same shared counts, and they add up.
    first, second = _samples(stack.scrape(0)), _samples(stack.scrape(1))
    assert first == second
    expected = {
        ("portal_link_requests_total", ()): PEOPLE + ADDRESS_LIMIT,
        ("portal_sign_ins_total", (("method", "email"), ("outcome", "success"))): PEOPLE,
        ("portal_sign_ins_total", (("method", "email"), ("outcome", "failure"))): PEOPLE,
        ("portal_rate_limit_refusals_total", (("limit", "signin-address"),)): 1,
        ("portal_mail_deliveries_total", (("outcome", "sent"),)): PEOPLE,
        ("portal_mail_delivery_seconds_count", ()): PEOPLE,
        ("portal_outbox_waiting", (("status", "queued"),)): 0,
    }
    assert {key: first.get(key) for key in expected} == expected
