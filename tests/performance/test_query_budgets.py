"""Query budgets of the sign-in by email and of a signed-in page (issue 14, docs/performance.md).

At 8:40 everyone signs in at once, so every statement of a sign-in is paid a few hundred
times a minute. These tests hold each step of the email journey to its budget on both
databases, so a change that adds a query fails here rather than on a Monday morning.

Counted: every SQL statement the database sees, from the first byte of the request to
the last (middleware included), except transaction control (``SAVEPOINT``, ``RELEASE``,
``ROLLBACK TO``: in the test database's wrapping transaction these stand in for BEGIN and
COMMIT). Transactions: each outermost atomic block is one, and so is each write outside
any (autocommit commits it alone). A read outside any block commits nothing and is counted
as a statement only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal.mail.worker import deliver_due
from tests.signin.magic import LINK, ask, text_of

pytestmark = pytest.mark.django_db
ALICE = "alice@northwind.example"
BACKEND = "portal.accounts.backends.PasswordlessBackend"

# The budgets (statements), per step; docs/performance.md has the numbers behind them.
# With Redis (production) the rate limits cost no SQL; on the embedded default they live
# in the database and cost three statements (count, record, bounded clean-up) per check.
LIMITS_IN_DATABASE = not settings.CONFIG.redis_url
LIMITER = 3 if LIMITS_IN_DATABASE else 0
REQUEST_POST = 8 if LIMITS_IN_DATABASE else 7
# One email alone (the worst case: at 8:40 a claim takes a batch and the per-message cost
# falls to under 2): the claim, the request locked, the person, the minted hashes, "sent",
# the attempt row, the request's delivery and its audit row. SQLite has no UPDATE ... FROM
# ... RETURNING claim, so its claim is a SELECT and an UPDATE.
WORKER_PER_MESSAGE = 9 if LIMITS_IN_DATABASE else 8
CONFIRM_PAGE = 3
CONFIRM_POST = 8  # 7, and the new-browser notice's one upsert (notifications.browsers)
ONE_CLICK_GET = 8
SIGNED_IN_PAGE = 3
# The 24, on the production path (PostgreSQL + Redis). The embedded default pays
# three statements for the database rate-limit check and one for its two-step claim, and
# saves the NOTIFY that only PostgreSQL sends: 27.
WHOLE_SIGN_IN = 27 if LIMITS_IN_DATABASE else 24

_CONTROL = re.compile(r"^\s*(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\b", re.I)
_READ = re.compile(r"^[\s(]*SELECT\b", re.I)


@dataclass
class Ledger:
    """What one step cost the database: its statements and its transactions."""

    sql: list[str] = field(default_factory=list)

    @property
    def statements(self) -> list[str]:
        return [sql for sql in self.sql if not _CONTROL.match(sql)]

    @property
    def transactions(self) -> int:
        depth = count = 0
        for sql in self.sql:
            control = _CONTROL.match(sql)
            if control and control.group(1).upper() == "SAVEPOINT":
                count += depth == 0
                depth += 1
            elif control:
                depth -= 1
            elif depth == 0 and not _READ.match(sql):
                count += 1  # a write in autocommit: a transaction of its own
        return count

    def __str__(self) -> str:
        lines = [f"{len(self.statements)} statements in {self.transactions} transactions:"]
        return "\n".join([*lines, *(f"  {sql[:300]}" for sql in self.sql)])


@pytest.fixture
def measure(django_assert_max_num_queries: Any) -> Callable[..., Any]:
    """``with measure(budget, transactions=...) as ledger:`` run one step and hold it to
    ``budget`` statements (pytest-django's ``django_assert_max_num_queries`` checks the
    total with transaction control, ``Ledger`` the split)."""

    @contextmanager
    def run(budget: int, *, transactions: int | None = None,
            most_transactions: int = 10) -> Iterator[Ledger]:
        ledger = Ledger()
        # Each transaction adds at most two control statements (SAVEPOINT and RELEASE), and
        # nested blocks two more each; the Ledger assertion below is the exact one.
        with django_assert_max_num_queries(budget + 4 * most_transactions):
            with CaptureQueriesContext(connection) as captured:
                yield ledger
            ledger.sql = [query["sql"] for query in captured.captured_queries]
            print(f"\n{ledger}")
            assert len(ledger.statements) <= budget, str(ledger)
            if transactions is not None:
                assert ledger.transactions == transactions, str(ledger)
            assert ledger.transactions <= most_transactions, str(ledger)

    return run


def _token_of(smtp: Any) -> str:
    (received,) = smtp.wait_for(1, timeout=5)
    match = LINK.search(text_of(received))
    assert match
    return match.group(1)


@pytest.fixture
def asked(alice: Any, smtp: Any) -> tuple[Client, str]:
    """Alice's browser asked for a link, and the worker sent it: (her browser, the token)."""
    browser = Client()
    ask(browser, ALICE)
    deliver_due()
    return browser, _token_of(smtp)


def test_request_post(alice: Any, measure: Any) -> None:
    browser = Client()
    # The database limiter decides in a short transaction of its own, before the request's.
    with measure(REQUEST_POST, transactions=2 if LIMITS_IN_DATABASE else 1):
        response = ask(browser, ALICE)
    assert response.status_code == 302


def test_worker_per_message(alice: Any, smtp: Any, measure: Any) -> None:
    ask(Client(), ALICE)
    with measure(WORKER_PER_MESSAGE):
        assert deliver_due() == 1
    _token_of(smtp)


def test_confirm_page(asked: tuple[Client, str], measure: Any) -> None:
    _, token = asked
    other = Client()
    with measure(CONFIRM_PAGE, transactions=1):  # the first opening: marked and audited
        assert other.get(f"/signin/link/{token}/").status_code == 302
    with measure(CONFIRM_PAGE, transactions=0):
        page = other.get("/signin/confirm/")
    assert page.status_code == 200
    again = Client()  # a scanner came first: the person's opening writes no mark, and its
    with measure(CONFIRM_PAGE + LIMITER):  # audit row only within the per-IP budget
        assert again.get(f"/signin/link/{token}/").status_code == 302


def test_confirm_post_is_one_transaction(asked: tuple[Client, str], measure: Any) -> None:
    _, token = asked
    other = Client()
    other.get(f"/signin/link/{token}/")
    with measure(CONFIRM_POST, transactions=1):
        response = other.post("/signin/confirm/")
    assert response.status_code == 302
    assert other.get("/requests/").status_code == 200


def test_one_click_get_is_one_transaction(asked: tuple[Client, str], measure: Any) -> None:
    browser, token = asked
    with measure(ONE_CLICK_GET, transactions=1):
        response = browser.get(f"/signin/link/{token}/")
    assert response.status_code == 302
    assert browser.get("/requests/").status_code == 200


@pytest.mark.parametrize("path", ["/requests/", "/"])
def test_signed_in_page(alice: Any, measure: Any, path: str) -> None:
    browser = Client()
    browser.force_login(alice, backend=BACKEND)
    browser.get(path)  # the first page after sign-in may touch "last seen"; the rest do not
    with measure(SIGNED_IN_PAGE, transactions=0):
        response = browser.get(path)
    assert response.status_code == 200


def _whole_sign_in(smtp: Any, measure: Any, budget: int) -> None:
    asking, other = Client(), Client()
    with measure(budget):
        ask(asking, ALICE)
        deliver_due()
        token = _token_of(smtp)
        other.get(f"/signin/link/{token}/")
        assert other.post("/signin/confirm/").status_code == 302
    assert other.get("/requests/").status_code == 200


def test_whole_sign_in(alice: Any, smtp: Any, measure: Any) -> None:
    """The four steps against the issue's budget of 24, worker included."""
    _whole_sign_in(smtp, measure, WHOLE_SIGN_IN)


# --- The asking tab's poll ----------------------------------------------------------------

STATUS_POLL = 2  # the session (none with Redis) and the request's row by primary key


def test_status_poll_is_one_read(alice: Any, measure: Any) -> None:
    browser = Client()
    ask(browser, ALICE)
    with measure(STATUS_POLL, transactions=0):
        assert browser.get("/signin/check-inbox/status/").status_code == 200


def test_status_poll_is_limited_per_request(alice: Any, settings: Any) -> None:
    """With Redis, a tab (or a script holding its session) polling past the limit gets
    429 and a Retry-After, and nothing about the request."""
    if not settings.CONFIG.redis_url:
        pytest.skip("the poll's limit lives in Redis; runs in the PostgreSQL + Redis pass")
    settings.SIGNIN_RATE_LIMITS = {**settings.SIGNIN_RATE_LIMITS, "status": "3/m"}
    browser = Client()
    ask(browser, ALICE)
    for _ in range(3):
        assert browser.get("/signin/check-inbox/status/").json()["state"] == "waiting"
    refused = browser.get("/signin/check-inbox/status/")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert refused.json() == {"state": "later", "final": False}
    # Another asking browser has its own allowance.
    other = Client()
    ask(other, "bob@northwind.example")
    assert other.get("/signin/check-inbox/status/").status_code == 200
