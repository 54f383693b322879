"""``/metrics``: who may read it, that Prometheus can parse it, and that its numbers move.

Each counting test runs once per store: ``redis`` (production: counts kept in Redis as
events commit) and ``tables`` (the embedded default: counts read from the audit trail and
the outbox at scrape time). Tests run inside a transaction, so the ``on_commit`` callbacks
that write the Redis counts are run by ``django_capture_on_commit_callbacks``, as a commit
would run them. The same counts across processes: tests/production/test_scale_out.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from portal.core import ratelimit
from portal.metrics import counters
from portal.metrics.views import token_matches
from tests.factories import make_user
from tests.signin.magic import ask, deliver_and_read

TOKEN = "metrics-token-" + "m" * 30
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def _use_redis(settings: Any, url: str) -> None:
    settings.CONFIG = dataclasses.replace(settings.CONFIG, redis_url=url)
    ratelimit._redis.cache_clear()
    counters._client.cache_clear()


@pytest.fixture(params=["tables", "redis"])
def store(request: pytest.FixtureRequest, settings: Any, db: None) -> Iterator[str]:
    """Count in one store or the other, with /metrics open to ``TOKEN``."""
    settings.METRICS_TOKEN = TOKEN
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        _use_redis(settings, url)
        client = redis.Redis.from_url(url)
        client.flushdb()  # the test Redis database: rate limits and counts start empty
        client.close()
    else:
        _use_redis(settings, "")
    yield str(request.param)
    ratelimit._redis.cache_clear()
    counters._client.cache_clear()


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: Client | None = None) -> Samples:
    """Read /metrics as Prometheus does and return every sample by (name, labels)."""
    response = (client or Client()).get("/metrics", **AUTH)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- Who may read it --------------------------------------------------------------------

def test_metrics_does_not_exist_without_a_token_configured(settings: Any, db: None) -> None:
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 404
    assert b"portal_" not in response.content


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}",
                                    f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x",
                                    f"Bearer {TOKEN.upper()}", TOKEN])
def test_metrics_refuses_a_missing_or_wrong_token_and_says_nothing(
        settings: Any, db: None, header: str | None) -> None:
    settings.METRICS_TOKEN = TOKEN
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = Client().get("/metrics", **extra)
    assert response.status_code == 401
    assert response.content == b""
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_metrics_answers_only_reads(settings: Any, db: None) -> None:
    settings.METRICS_TOKEN = TOKEN
    assert Client().post("/metrics", **AUTH).status_code == 405


def test_token_is_compared_whole() -> None:
    assert token_matches(f"Bearer {TOKEN}", TOKEN)
    assert token_matches(f"bearer  {TOKEN} ", TOKEN)
    assert not token_matches(f"Bearer {TOKEN}", "")
    assert not token_matches("Bearer ", "")  # no configured token is never matched by none


# --- What it says -----------------------------------------------------------------------

def test_every_family_parses_and_is_documented(store: str) -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    names = {name for name, _ in scrape()}
    assert {"portal_link_requests_total", "portal_mail_delivery_seconds_count",
            "portal_outbox_oldest_waiting_seconds"} <= names
    for name in names:
        base = name.removesuffix("_total").removesuffix("_bucket").removesuffix(
            "_count").removesuffix("_sum").removesuffix("_created")
        assert f"`{base}" in docs, f"{base} is not in docs/operations.md"


def test_a_sign_in_moves_the_counts(store: str, alice: Any, smtp: Any,
                                    django_capture_on_commit_callbacks: Callable[..., Any]
                                    ) -> None:
    before = scrape()
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        ask(client, alice.email)
    queued = scrape()
    assert value(queued, "portal_outbox_waiting", status="queued") == value(
        before, "portal_outbox_waiting", status="queued") + 1
    assert value(queued, "portal_outbox_oldest_waiting_seconds") >= 0
    with django_capture_on_commit_callbacks(execute=True):
        (link,) = deliver_and_read(smtp)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(link.path).status_code == 302  # signed in: one click, same browser
    with django_capture_on_commit_callbacks(execute=True):
        assert Client().get(link.path).status_code == 302  # used again: refused
    after = scrape()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("portal_link_requests_total") == 1
    assert moved("portal_sign_ins_total", method="email", outcome="success") == 1
    assert moved("portal_sign_ins_total", method="email", outcome="failure") == 1
    assert moved("portal_mail_deliveries_total", outcome="sent") == 1
    assert moved("portal_mail_delivery_seconds_count") == 1
    assert moved("portal_mail_delivery_seconds_bucket", le="+Inf") == 1
    assert value(after, "portal_outbox_waiting", status="queued") == value(
        before, "portal_outbox_waiting", status="queued")


def test_a_rate_limit_refusal_is_counted_under_its_limit(
        store: str, northwind: Any, settings: Any,
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    settings.SIGNIN_RATE_LIMITS = {**settings.SIGNIN_RATE_LIMITS, "address": "3/15m"}
    statuses = []
    for n in range(4):  # four browsers, four client addresses, one email address
        with django_capture_on_commit_callbacks(execute=True):
            statuses.append(ask(Client(), "bob@northwind.example",
                                REMOTE_ADDR=f"198.51.100.{n + 1}").status_code)  # type: ignore[attr-defined]
    assert statuses == [302, 302, 302, 429]
    samples = scrape()
    assert value(samples, "portal_rate_limit_refusals_total", limit="signin-address") == 1
    assert value(samples, "portal_link_requests_total") == 3


def test_with_redis_counting_adds_no_sql_to_a_sign_in(
        store: str, northwind: Any, smtp: Any, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    if store != "redis":
        pytest.skip("the rule is about Redis; the embedded default counts at scrape time")

    def sign_in(email: str) -> list[int]:
        """Ask, deliver (not a web request), open the link; queries of each request."""
        client, counted = Client(), []
        with CaptureQueriesContext(connection) as queries, \
                django_capture_on_commit_callbacks(execute=True):
            assert ask(client, email).status_code == 302  # type: ignore[attr-defined]
        counted.append(len(queries))
        with django_capture_on_commit_callbacks(execute=True):
            (link,) = deliver_and_read(smtp)
        smtp.clear()
        with CaptureQueriesContext(connection) as queries, \
                django_capture_on_commit_callbacks(execute=True):
            assert client.get(link.path).status_code == 302
        counted.append(len(queries))
        return counted

    make_user("dana@northwind.example", northwind)
    make_user("erin@northwind.example", northwind)
    field = counters.field("sign_ins", "email", counters.SUCCESS)
    store_client = counters.redis_client()
    assert store_client is not None
    with monkeypatch.context() as off:
        off.setattr(counters, "count_event", lambda tag, detail: None)
        without = sign_in("dana@northwind.example")
    assert store_client.hget(counters.KEY, field) is None
    with_counting = sign_in("erin@northwind.example")
    assert store_client.hget(counters.KEY, field) == b"1"
    assert with_counting == without


def test_counts_unreadable_in_redis_answer_an_error_not_zeros(settings: Any, db: None) -> None:
    settings.METRICS_TOKEN = TOKEN
    _use_redis(settings, "redis://127.0.0.1:1/0")
    try:
        response = Client().get("/metrics", **AUTH)
    finally:
        counters._client.cache_clear()
        ratelimit._redis.cache_clear()
    assert response.status_code == 503
    assert b"portal_sign_ins" not in response.content


def test_labels_come_from_fixed_sets_not_from_what_was_sent() -> None:
    assert counters.classify("signin:oidc:failed", {"provider": "evil<script>"}) == \
        "sign_ins|other|failure"
    assert counters.classify("signin:oidc:failed", {"provider": "google"}) == \
        "sign_ins|google|failure"
    assert counters.classify("signin:passkey:failed", {"stage": "register"}) is None
    assert counters.classify("signin:session:signed_out", {}) is None


def test_a_scrape_reads_the_outbox_once_and_with_redis_nothing_else(store: str) -> None:
    with CaptureQueriesContext(connection) as queries:
        scrape()
    tables = [q["sql"] for q in queries.captured_queries]
    outbox = [sql for sql in tables if "mail_outboundmessage" in sql and '"status" IN' in sql
              and "GROUP BY" in sql]
    assert len(outbox) >= 1
    if store == "redis":
        assert len(tables) == 1, tables  # the gauges; every counter came from Redis
    else:
        assert any("audit_authevent" in sql and '"tag" IN' in sql for sql in tables)
        assert len(tables) <= 5, tables
