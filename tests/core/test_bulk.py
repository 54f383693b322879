"""``update_each`` writes each row's own values, in one statement, on both databases."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from portal.core.bulk import update_each
from portal.core.clock import now
from portal.signin.models import SignInRequest
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db


def requests(count: int) -> list[SignInRequest]:
    expires = now() + timedelta(minutes=15)
    return [SignInRequest.objects.create(email=f"p{n}@northwind.example", expires_at=expires)
            for n in range(count)]


def test_each_row_gets_its_own_values_in_one_statement(
        django_assert_num_queries: Any) -> None:
    org = make_org()
    people = [make_user(f"p{n}@northwind.example", org=org) for n in range(3)]
    rows = requests(4)
    untouched = rows.pop()
    for n, row in enumerate(rows):
        row.token_hash, row.code_hmac, row.link_seed = f"{n}a" * 32, f"{n}b" * 32, f"s{n}"
        row.user = people[n] if n else None
        row.email = "changed@example.org"  # not among the fields: stays as stored
    with django_assert_num_queries(1):
        assert update_each(rows, ["link_seed", "token_hash", "code_hmac", "user"]) == 3
    for n, row in enumerate(rows):
        stored = SignInRequest.objects.get(pk=row.pk)
        assert (stored.token_hash, stored.code_hmac, stored.link_seed) == (
            f"{n}a" * 32, f"{n}b" * 32, f"s{n}")
        assert stored.user_id == (people[n].pk if n else None)
        assert stored.email == f"p{n}@northwind.example"
    assert SignInRequest.objects.get(pk=untouched.pk).token_hash == ""


def test_text_is_a_parameter_never_sql() -> None:
    (row,) = requests(1)
    row.link_seed = "x'); DROP TABLE signin_signinrequest; --"
    assert update_each([row], ["link_seed"]) == 1
    assert SignInRequest.objects.get(pk=row.pk).link_seed == row.link_seed


def test_nothing_to_write_is_no_statement(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert update_each([], ["link_seed"]) == 0


def test_unsaved_or_mixed_rows_are_refused() -> None:
    (row,) = requests(1)
    with pytest.raises(ValueError, match="saved rows of one model"):
        update_each([row, SignInRequest(email="new@example.org")], ["link_seed"])
