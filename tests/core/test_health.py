"""``/healthz``: 200 only when email sign-in can work (issue 9, item 10).

It checks the database, Redis when it is configured (rate limits fail closed without it)
and the age of the oldest queued email (past a link's lifetime, links arrive dead).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from portal.core import health
from portal.core.clock import now
from portal.mail.models import OutboundMessage
from portal.mail.outbox import enqueue
from tests.config.portal_cli import PRODUCTION, run_portal
from tests.support.smtp import free_port

pytestmark = pytest.mark.django_db
Status = OutboundMessage.Status


def _get(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz")
    assert response["Content-Type"] == "application/json"
    # A cached "ok" would hide an outage from whoever watches it.
    assert "no-cache" in response["Cache-Control"]
    return response.status_code, response.json()


def _queued(age: timedelta, status: str = Status.QUEUED) -> OutboundMessage:
    message = enqueue(to="someone@example.com", subject="Hello", text="Hello")
    OutboundMessage.objects.filter(pk=message.pk).update(created_at=now() - age, status=status)
    return message


def test_healthy_portal_answers_200_and_says_what_it_checked(client: Client,
                                                            settings: Any) -> None:
    status, body = _get(client)
    assert status == 200
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["redis"] == ("ok" if settings.CONFIG.redis_url else "not configured")
    assert body["mail_queue"] == {"status": "ok", "waiting": 0, "oldest_seconds": None,
                                  "limit_seconds": settings.MAGIC_LINK_TTL_SECONDS - 60}
    assert body["problems"] == []


@pytest.fixture
def redis_down(settings: Any) -> Iterator[str]:
    """Point the portal at a loopback port where nothing listens: a real unreachable Redis."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.CONFIG = dataclasses.replace(settings.CONFIG, redis_url=url)
    yield url
    health._redis_client.cache_clear()


@pytest.mark.usefixtures("redis_down")
def test_unreachable_redis_answers_503(client: Client) -> None:
    status, body = _get(client)
    assert status == 503
    assert (body["status"], body["redis"], body["database"]) == ("error", "unreachable", "ok")
    assert body["problems"] == ["Redis does not answer: email sign-in refuses every request."]


def test_a_queued_email_older_than_a_link_lives_answers_503(client: Client,
                                                           settings: Any) -> None:
    limit = timedelta(seconds=settings.MAGIC_LINK_TTL_SECONDS) - timedelta(seconds=60)
    _queued(limit - timedelta(seconds=30))
    status, body = _get(client)
    assert status == 200
    assert body["mail_queue"]["waiting"] == 1
    assert limit.total_seconds() - 31 <= body["mail_queue"]["oldest_seconds"] < limit.total_seconds()

    _queued(limit + timedelta(seconds=5))
    status, body = _get(client)
    assert status == 503
    assert body["mail_queue"]["status"] == "late"
    assert body["mail_queue"]["waiting"] == 2
    assert body["mail_queue"]["oldest_seconds"] > body["mail_queue"]["limit_seconds"]
    assert "oldest queued email" in body["problems"][0]


@pytest.mark.parametrize("status", [Status.RETRYING, Status.SENDING])
def test_a_message_still_being_tried_counts_as_queued(client: Client, settings: Any,
                                                      status: str) -> None:
    _queued(timedelta(seconds=settings.MAGIC_LINK_TTL_SECONDS), status=status)
    assert _get(client)[0] == 503


@pytest.mark.parametrize("status", [Status.SENT, Status.FAILED, Status.EXPIRED,
                                    Status.CANCELLED])
def test_old_messages_that_are_done_do_not_count(client: Client, settings: Any,
                                                 status: str) -> None:
    _queued(timedelta(days=3), status=status)
    status_code, body = _get(client)
    assert status_code == 200
    assert body["mail_queue"]["waiting"] == 0


def test_the_limit_follows_the_link_lifetime(client: Client, settings: Any) -> None:
    settings.MAGIC_LINK_TTL_SECONDS = 600
    _queued(timedelta(seconds=545))
    status, body = _get(client)
    assert (status, body["mail_queue"]["limit_seconds"]) == (503, 540)


HEALTHZ_IN_A_PROCESS = (
    "import json; from django.test import Client; r = Client().get('/healthz'); "
    "print(json.dumps({'status': r.status_code, 'body': r.json()}))"
)


def test_unreachable_database_answers_503_not_500() -> None:
    # A real process whose PostgreSQL is a loopback port where nothing listens.
    result = run_portal("shell", "-c", HEALTHZ_IN_A_PROCESS, **PRODUCTION,
                        PORTAL_ALLOWED_HOSTS="testserver",
                        DATABASE_URL=f"postgres://portal@127.0.0.1:{free_port()}/portal")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["status"] == 503
    assert printed["body"]["database"] == "unreachable"
    assert printed["body"]["mail_queue"]["status"] == "unknown"
    assert printed["body"]["problems"] == ["The database does not answer."]
