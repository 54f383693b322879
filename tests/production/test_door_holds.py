"""Issue 9's "How we will check", through nginx → `portal serve` → PostgreSQL, Redis, worker.

A flood for one address sends at most that address's allowance and leaves everyone else
served; a disabled person's cookie is dead, even after they are turned back on.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from portal.audit.tags import Tag
from tests.signin.magic import LINK, text_of
from tests.support.proxy import Stack, StackClient

pytestmark = [pytest.mark.postgres]

FLOOD = 1000
COLLEAGUES = 10
PER_ADDRESS = 5  # SIGNIN_LIMIT_PER_ADDRESS's default, which the stack runs with


def _ask(client: StackClient, email: str) -> int:
    return client.form("/signin/", {"email": email}).status_code


def _organization(stack: Stack, name: str) -> str:
    domain = f"{stack.unique(name)}.example"
    made = stack.portal("addorg", f"Org {domain}", "--domain", domain)
    assert made.returncode == 0, made.stderr
    return domain


def _person(stack: Stack, email: str, domain: str) -> None:
    made = stack.portal("adduser", email, "--org", f"Org {domain}")
    assert made.returncode == 0, made.stderr


def test_a_flood_for_one_address_sends_at_most_its_allowance_and_others_are_served(
        stack: Stack) -> None:
    domain = _organization(stack, "flooded")
    victim = f"alice@{domain}"
    colleagues = [f"person{n}@{domain}" for n in range(COLLEAGUES)]
    for email in [victim, *colleagues]:
        _person(stack, email, domain)
    stack.smtp.clear()

    def flood(start: int) -> list[int]:
        # Rotating source addresses: each stays far below the per-IP limit.
        codes = []
        for n in range(start, FLOOD, 8):
            with stack.client(f"127.0.{2 + n // 250}.{1 + n % 250}") as client:
                codes.append(_ask(client, victim))
        return codes

    def colleague(number: int) -> int:
        with stack.client(f"127.0.9.{number + 1}") as client:
            return _ask(client, colleagues[number])

    with ThreadPoolExecutor(max_workers=8) as pool:
        flooding = [pool.submit(flood, start) for start in range(8)]
        served = list(pool.map(colleague, range(COLLEAGUES)))
        statuses = Counter(code for job in flooding for code in job.result())

    assert served == [302] * COLLEAGUES
    assert statuses == {302: PER_ADDRESS, 429: FLOOD - PER_ADDRESS}
    # Every colleague gets exactly one email; the victim's inbox at most the allowance.
    def inboxes() -> Counter[str]:
        return Counter(rcpt for message in stack.smtp.messages for rcpt in message.rcpt_tos)

    deadline = time.monotonic() + 120
    while not all(inboxes()[email] for email in colleagues) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # anything else the worker was about to send has arrived too
    to = inboxes()
    assert all(to[email] == 1 for email in colleagues), to
    assert 1 <= to[victim] <= PER_ADDRESS
    # The refusals were not written without bound either.
    refusals = stack.sql("SELECT count(*) FROM audit_authevent WHERE tag = %s AND email = %s",
                         [Tag.LINK_RATE_LIMITED.value, victim])
    assert refusals[0][0] <= 20


def test_a_disabled_persons_cookie_is_dead_even_after_they_are_turned_back_on(
        stack: Stack) -> None:
    domain = _organization(stack, "disabled")
    alice = f"alice@{domain}"
    _person(stack, alice, domain)
    stack.smtp.clear()
    with stack.client("127.0.8.1") as browser:
        assert _ask(browser, alice) == 302
        [email] = stack.smtp.wait_for(1, timeout=60)
        match = LINK.search(text_of(email))
        assert match
        assert browser.get(match.group(0).removeprefix(stack.base_url)).status_code == 302
        assert browser.get("/").status_code == 200

        def set_active(active: bool) -> None:
            done = stack.portal("shell", "-c", (
                "from portal.accounts.models import User; "
                f"u = User.objects.get(email='{alice}'); u.is_active = {active}; u.save()"))
            assert done.returncode == 0, done.stderr

        set_active(False)
        refused = browser.get("/requests/")
        assert refused.status_code == 302 and refused.headers["Location"].startswith("/signin/")
        set_active(True)
        again = browser.get("/requests/")
        assert again.status_code == 302 and again.headers["Location"].startswith("/signin/")
