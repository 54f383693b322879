"""A prepared query is Django's own SQL for its queryset, run with the value put in.

``portal.core.prepared`` keeps the SQL of a hot queryset instead of compiling it on every
page; these tests hold every prepared query of the portal to what Django compiles for a
real value, and to the rows the queryset gives, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db.models import QuerySet

from portal.accounts import backends
from portal.accounts.models import User
from portal.core.prepared import MARKS, Prepared
from portal.servicedesk import services
from portal.servicedesk.models import ServiceRequest
from portal.signin import models as signin_models
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db

# Every prepared query of the portal, with the shapes its callers use.
PREPARED = [(services.OVERVIEW, (10, 5)), (services.OVERVIEW, (3, 2)), (backends.PERSON, ()),
            (signin_models.BY_ID, ())]


@pytest.fixture
def busy() -> int:
    """An organization with 12 open and 7 closed requests, and a neighbour with its own."""
    org = make_org()
    alice = make_user(org=org)
    other = make_org("Contoso", ["contoso.example"])
    carol = make_user("carol@contoso.example", org=other)
    statuses = [ServiceRequest.Status.NEW, ServiceRequest.Status.IN_PROGRESS,
                ServiceRequest.Status.WAITING] * 4 + [ServiceRequest.Status.RESOLVED,
                                                      ServiceRequest.Status.CLOSED] * 3 + [
        ServiceRequest.Status.CLOSED]
    for index, status in enumerate(statuses):
        for person in (alice, carol):
            sr = services.file_request(person, title=f"Printer {index}", description="Blank.")
            ServiceRequest.objects.filter(pk=sr.pk).update(
                status=status, updated_at=sr.updated_at + timedelta(minutes=index))
    return org.pk


@pytest.mark.parametrize(("prepared", "shape"), PREPARED)
def test_the_sql_is_djangos_for_a_real_value(prepared: Prepared[ServiceRequest],
                                             shape: tuple[int, ...], busy: int) -> None:
    sql, params = prepared.queryset(busy, *shape).query.get_compiler("default").as_sql()
    compiled = prepared.compiled(int, *shape)
    assert compiled.sql == sql
    assert compiled.with_value(busy) == list(params)


@pytest.mark.parametrize(("prepared", "shape"), PREPARED[:2])
def test_the_rows_are_the_querysets(prepared: Prepared[ServiceRequest],
                                    shape: tuple[int, ...], busy: int) -> None:
    expected = [(row.pk, row.status, row.updated_at, row.open_count)
                for row in prepared.queryset(busy, *shape)]
    got = [(row.pk, row.status, row.updated_at, row.open_count)
           for row in prepared.rows(busy, *shape)]
    assert got == expected
    assert len(got) == sum(shape)  # there are more of each kind than shown


def test_the_overview_shows_only_the_persons_organization(busy: int) -> None:
    alice = User.objects.get(email="alice@northwind.example")
    shown = services.overview(alice, open_limit=10, closed_limit=5)
    assert shown.open_count == 12
    assert [sr.title for sr in shown.open_requests] == [f"Printer {i}" for i in range(11, 1, -1)]
    assert [sr.title for sr in shown.recent_closed] == [f"Printer {i}"
                                                        for i in range(18, 13, -1)]
    everything = [*shown.open_requests, *shown.recent_closed]
    assert {sr.organization_id for sr in everything} == {busy}


def test_a_queryset_with_prefetch_or_values_is_refused() -> None:
    for build in (lambda pk: ServiceRequest.objects.prefetch_related("comments").filter(pk=pk),
                  lambda pk: ServiceRequest.objects.filter(pk=pk).values("title")):
        with pytest.raises(ValueError, match="model rows"):
            Prepared(build).rows(1)


def test_a_value_written_into_the_sql_text_is_refused() -> None:
    def build(pk: int) -> QuerySet[ServiceRequest]:
        return ServiceRequest.objects.extra(where=[f"id = {pk}"])  # noqa: S610

    with pytest.raises(ValueError, match="parameter"):
        Prepared(build).rows(1)
    assert str(MARKS[int]) not in str(services.OVERVIEW.compiled(int, 10, 5).sql)


@pytest.mark.parametrize("value", [1.0, True, None, b"1"])
def test_only_an_integer_is_taken(value: object) -> None:
    with pytest.raises(TypeError, match="an int or a str"):
        services.OVERVIEW.rows(value, 10, 5)  # type: ignore[arg-type]


def test_the_signed_in_person_comes_with_membership_and_organization(
        busy: int, django_assert_num_queries: Any) -> None:
    alice = User.objects.get(email="alice@northwind.example")
    expected = backends.person_queryset(alice.pk).get()
    with django_assert_num_queries(1):
        person = backends.PERSON.first(alice.pk)
        assert person is not None
        assert person.organization is not None  # loaded with it: no second query
        assert person.organization.pk == busy
        assert person.membership.role == expected.membership.role
    for field in User._meta.concrete_fields:
        assert getattr(person, field.attname) == getattr(expected, field.attname), field.name
    assert backends.PERSON.first(alice.pk + 10_000) is None


def test_the_backend_still_refuses_a_person_turned_off(busy: int) -> None:
    alice = User.objects.get(email="alice@northwind.example")
    backend = backends.PasswordlessBackend()
    assert backend.get_user(alice.pk) == alice
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert backend.get_user(alice.pk) is None  # compiled once, but the row is read each time


def test_the_sign_in_lookups_match_django_for_a_real_hash(busy: int) -> None:
    alice = User.objects.get(email="alice@northwind.example")
    made = signin_models.SignInRequest.objects.create(
        email=alice.email, user=alice, expires_at=alice.date_joined + timedelta(hours=1),
        token_hash="ab" * 32)
    prepared = signin_models.BY_TOKEN_HASH
    sql, params = prepared.queryset("ab" * 32).query.get_compiler("default").as_sql()
    compiled = prepared.compiled(str)
    assert (compiled.sql, compiled.with_value("ab" * 32)) == (sql, list(params))
    for found in (prepared.first("ab" * 32), signin_models.BY_ID.first(made.pk)):
        assert found is not None and found.pk == made.pk
        assert found.user == alice and found.user.organization.pk == busy
    assert prepared.first("cd" * 32) is None
