from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from portal.servicedesk import services
from portal.servicedesk.models import ServiceRequest
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db


def file(user, title="Printer offline", **kwargs):
    return services.file_request(user, title=title, description="It shows offline.", **kwargs)


def test_requests_for_shows_only_the_users_own_organization(northwind, contoso):
    alice = make_user("alice@northwind.example", northwind)
    dan = make_user("dan@contoso.example", contoso)
    mine = file(alice)
    file(dan)
    assert list(services.requests_for(alice)) == [mine]


def test_people_without_an_organization_see_no_requests(northwind):
    file(make_user("alice@northwind.example", northwind))
    loner = make_user("sam@cloudsentry.com", staff=True)
    assert list(services.requests_for(loner)) == []


def test_numbers_start_at_1001_and_count_up_per_organization(northwind, contoso):
    alice = make_user("alice@northwind.example", northwind)
    dan = make_user("dan@contoso.example", contoso)
    assert [file(alice).number, file(alice).number, file(dan).number] == [1001, 1002, 1001]


def test_filing_without_an_organization_is_refused():
    with pytest.raises(services.NoOrganization):
        file(make_user("sam@cloudsentry.com", staff=True))


def test_filed_request_records_who_filed_it_and_starts_new(northwind):
    alice = make_user("alice@northwind.example", northwind)
    sr = file(alice, priority=ServiceRequest.Priority.HIGH)
    assert (sr.created_by, sr.status, sr.priority, sr.organization) == (
        alice, ServiceRequest.Status.NEW, ServiceRequest.Priority.HIGH, northwind)


def test_get_request_of_another_organization_is_not_found(northwind, contoso):
    dan = make_user("dan@contoso.example", contoso)
    theirs = file(dan)
    alice = make_user("alice@northwind.example", northwind)
    with pytest.raises(services.RequestNotFound):
        services.get_request(alice, theirs.number)


def test_commenting_on_another_organizations_request_is_refused(northwind, contoso):
    theirs = file(make_user("dan@contoso.example", contoso))
    alice = make_user("alice@northwind.example", northwind)
    with pytest.raises(services.RequestNotFound):
        services.add_comment(alice, theirs, "Let me in")
    assert theirs.comments.count() == 0


def test_customer_reply_puts_a_waiting_request_back_in_progress(northwind):
    alice = make_user("alice@northwind.example", northwind)
    sr = file(alice)
    ServiceRequest.objects.filter(pk=sr.pk).update(status=ServiceRequest.Status.WAITING)
    before = ServiceRequest.objects.get(pk=sr.pk).updated_at
    comment = services.add_comment(alice, sr, "Here is the answer.")
    sr.refresh_from_db()
    assert sr.status == ServiceRequest.Status.IN_PROGRESS
    assert sr.updated_at >= before
    assert (comment.author, comment.from_staff) == (alice, False)


def test_customer_reply_reopens_a_resolved_request(northwind):
    alice = make_user("alice@northwind.example", northwind)
    sr = file(alice)
    ServiceRequest.objects.filter(pk=sr.pk).update(status=ServiceRequest.Status.RESOLVED)
    services.add_comment(alice, sr, "Still broken.")
    sr.refresh_from_db()
    assert sr.status == ServiceRequest.Status.IN_PROGRESS


def test_a_closed_request_takes_no_comments(northwind):
    alice = make_user("alice@northwind.example", northwind)
    sr = file(alice)
    ServiceRequest.objects.filter(pk=sr.pk).update(status=ServiceRequest.Status.CLOSED)
    with pytest.raises(services.RequestClosed):
        services.add_comment(alice, sr, "Hello?")
    assert sr.comments.count() == 0


def test_only_staff_reply_as_staff(northwind):
    alice = make_user("alice@northwind.example", northwind)
    sr = file(alice)
    with pytest.raises(PermissionError):
        services.reply_as_staff(alice, sr, "I am the service desk")
    sam = make_user("sam@cloudsentry.com", staff=True)
    reply = services.reply_as_staff(sam, sr, "On it.")
    assert (reply.from_staff, reply.author) == (True, sam)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_filings_get_distinct_consecutive_numbers(on_postgres):
    org = make_org("Northwind Logistics", ["northwind.example"])
    people = [make_user(f"user{i}@northwind.example", org) for i in range(8)]
    barrier = threading.Barrier(len(people), timeout=30)
    numbers: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(user) -> None:
        try:
            barrier.wait()
            sr = file(user)
            with lock:
                numbers.append(sr.number)
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sorted(numbers) == list(range(1001, 1001 + len(people)))
    assert connection.vendor == "postgresql"
