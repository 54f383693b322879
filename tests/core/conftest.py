"""Fixtures that point the rate limiter at one store or the other."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from portal.core import ratelimit


def use_store(settings: Any, redis_url: str) -> None:
    """Swap the frozen ``settings.CONFIG`` for one with ``redis_url`` and forget old clients."""
    settings.CONFIG = dataclasses.replace(settings.CONFIG, redis_url=redis_url)
    ratelimit._redis.cache_clear()


@pytest.fixture
def scope() -> str:
    """A scope no other test (or earlier run against the same Redis) has counted under."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def database_store(settings: Any, db: None) -> Iterator[None]:
    use_store(settings, "")
    yield
    ratelimit._redis.cache_clear()


@pytest.fixture
def redis_store(settings: Any, redis_url: str, scope: str) -> Iterator[redis.Redis]:
    use_store(settings, redis_url)
    client = redis.Redis.from_url(redis_url)
    yield client
    # Only this test's keys: the Redis database is shared with other suites.
    for key in client.scan_iter(match=f"rl:{scope}*", count=500):
        client.delete(key)
    client.close()
    ratelimit._redis().close()
    ratelimit._redis.cache_clear()


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest, db: None) -> str:
    """Run a test once per counter store.

    ``db`` is asked for here, not only inside ``database_store``: pytest-django orders
    tests by the fixtures it can see, and a test that reaches the database only through
    ``getfixturevalue`` would run among the database-free tests at the end, after the
    browser tests, and leave a connection that stops the test database from being dropped.
    """
    request.getfixturevalue(f"{request.param}_store")
    return str(request.param)
