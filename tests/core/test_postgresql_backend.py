"""The PostgreSQL backend checks a kept connection only after it idled (decision 0036).

Each test drives its own connection (``connections.create_connection``), outside the test
transaction, the way a gunicorn worker's connection lives from one request to the next:
``close_old_connections`` as a request starts, then queries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import OperationalError, connections

from portal.core.postgresql import base

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_postgres")]


@pytest.fixture
def worker() -> Iterator[Any]:
    """A connection of its own, with health checks on (as production sets them)."""
    wrapper = connections.create_connection("default")
    wrapper.settings_dict["CONN_HEALTH_CHECKS"] = True
    wrapper.settings_dict["CONN_MAX_AGE"] = 60
    wrapper.checks: list[bool] = []
    usable = wrapper.is_usable

    def counted() -> bool:
        answer = usable()
        wrapper.checks.append(answer)
        return bool(answer)

    wrapper.is_usable = counted
    yield wrapper
    wrapper.close()


def page(wrapper: Any) -> int:
    """One request's worth: the start-of-request clean-up, then a query."""
    wrapper.close_if_unusable_or_obsolete()
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def idle(wrapper: Any) -> None:
    wrapper.last_used -= base.CHECK_AFTER_IDLE_SECONDS + 1


def terminate(pid: int) -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_the_engine_is_the_portals() -> None:
    assert isinstance(connections["default"], base.DatabaseWrapper)


def test_a_connection_used_just_now_is_not_checked_again(worker: Any) -> None:
    first = page(worker)
    for _ in range(5):
        assert page(worker) == first  # the same connection, kept
    assert worker.checks == []  # and no SELECT 1 round trip before any of those pages


def test_a_connection_that_idled_is_checked_first(worker: Any) -> None:
    first = page(worker)
    idle(worker)
    assert page(worker) == first
    assert worker.checks == [True]
    page(worker)
    assert worker.checks == [True]  # checked once, then fresh again


def test_a_connection_killed_while_idle_is_replaced_before_the_page_uses_it(worker: Any) -> None:
    first = page(worker)
    terminate(first)  # a PostgreSQL restart in the night, for this connection
    idle(worker)
    second = page(worker)  # the page still works: the check found it dead and reconnected
    assert second != first
    assert worker.checks == [False]


def test_a_connection_killed_while_busy_fails_one_query_then_is_replaced(worker: Any) -> None:
    first = page(worker)
    terminate(first)  # dies between two requests a moment apart: not checked, so ...
    with pytest.raises(OperationalError):
        page(worker)  # ... the query that meets the break fails, as one in flight would,
    worker.close_if_unusable_or_obsolete()  # the request ends: Django sees the error
    assert page(worker) != first  # and the next request has a new connection
