"""The sign-in history an organization's admins see (portal/orgadmin/history.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal.audit.models import AuthEvent
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.orgadmin import history
from tests.factories import make_user

BACKEND = "portal.accounts.backends.PasswordlessBackend"
T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0 Safari/537.36"
URL = "/organization/history/"
EXPORT = "/organization/history/export.csv"


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user, backend=BACKEND)
    return client


def event(tag: Tag, user: Any, at: datetime, **extra: Any) -> AuthEvent:
    with time_machine.travel(at, tick=False):
        return record_event(tag, user=user, ip=extra.pop("ip", "203.0.113.7"),
                            agent=extra.pop("agent", CHROME), **extra)


@pytest.fixture
def bob(northwind: Any) -> Any:
    return make_user("bob@northwind.example", northwind, full_name="Bob Ng")


@pytest.fixture
def frank(contoso: Any) -> Any:
    return make_user("frank@contoso.example", contoso, admin=True)


@pytest.fixture
def trail(alice: Any, bob: Any, frank: Any) -> None:
    """Northwind's history (Alice, Bob) and Contoso's (Frank), over three days."""
    event(Tag.LINK_REDEEMED, alice, T0, method="email")
    event(Tag.LINK_EXPIRED_USE, bob, T0 + timedelta(hours=1))
    event(Tag.OIDC_SUCCEEDED, bob, T0 + timedelta(days=1), method="google")
    event(Tag.PASSKEY_SIGNED_IN, alice, T0 + timedelta(days=2), method="passkey")
    event(Tag.OIDC_SUCCEEDED, frank, T0 + timedelta(hours=2), method="microsoft")
    event(Tag.LINK_REDEEMED, frank, T0 + timedelta(days=1), method="email")


def test_admins_see_their_organizations_sign_ins_newest_first(alice: Any, trail: None) -> None:
    response = client_for(alice).get(URL)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [(r.person, r.what, r.method, r.outcome) for r in rows] == [
        ("alice@northwind.example", "Signed in", "Passkey", "Success"),
        ("bob@northwind.example", "Signed in", "Google", "Success"),
        ("bob@northwind.example", "Used an expired link", "Email link", "Failure"),
        ("alice@northwind.example", "Signed in", "Email link", "Success"),
    ]
    page = response.content.decode()
    assert "Chrome on Windows" in page and "203.0.113.7" in page
    assert "6 Mar 2030, 09:00 UTC" in page
    assert 'class="rows"' in page and 'data-label="Person"' in page


def test_another_organizations_rows_never_show_on_the_page_or_in_the_export(
        alice: Any, frank: Any, trail: None) -> None:
    client = client_for(alice)
    page = client.get(URL).content.decode()
    assert "frank@contoso.example" not in page
    export = b"".join(client.get(EXPORT).streaming_content).decode()
    assert "frank" not in export and "contoso" not in export
    # Asking for Contoso's person by address is refused, not answered with their rows.
    refused = client.get(URL, {"person": "frank@contoso.example"})
    assert refused.status_code == 400
    assert "frank@contoso.example" not in refused.content.decode()
    refused_export = client.get(EXPORT, {"person": "frank@contoso.example"})
    assert refused_export.status_code == 400
    # And Contoso's admin sees only Contoso.
    theirs = client_for(frank).get(URL).context["rows"]
    assert {r.person for r in theirs} == {"frank@contoso.example"}


def test_staff_admin_changes_are_not_part_of_the_history(alice: Any, bob: Any) -> None:
    event(Tag.LINK_REDEEMED, bob, T0, method="email")
    record_event(Tag.ADMIN_USER_CHANGED, user=bob, organization=bob.organization)
    rows = client_for(alice).get(URL).context["rows"]
    assert [r.what for r in rows] == ["Signed in"]


def test_filters_by_person_outcome_and_days(alice: Any, trail: None) -> None:
    client = client_for(alice)
    bobs = client.get(URL, {"person": "bob@northwind.example"}).context["rows"]
    assert {r.person for r in bobs} == {"bob@northwind.example"} and len(bobs) == 2
    failures = client.get(URL, {"outcome": "failure"}).context["rows"]
    assert [r.what for r in failures] == ["Used an expired link"]
    day_two = client.get(URL, {"since": "2030-03-05", "until": "2030-03-05"}).context["rows"]
    assert [r.method for r in day_two] == ["Google"]
    from_day_two = client.get(URL, {"since": "2030-03-05"}).context["rows"]
    assert len(from_day_two) == 2


def test_days_are_counted_in_the_admins_own_zone(alice: Any, bob: Any) -> None:
    # 23:30 UTC on 4 March is already 5 March in Berlin (UTC+1).
    event(Tag.LINK_REDEEMED, bob, datetime(2030, 3, 4, 23, 30, tzinfo=UTC), method="email")
    client = client_for(alice)
    assert len(client.get(URL, {"since": "2030-03-05"}).context["rows"]) == 0
    alice.time_zone = "Europe/Berlin"
    alice.save(update_fields=["time_zone"])
    rows = client.get(URL, {"since": "2030-03-05"}).context["rows"]
    assert len(rows) == 1
    assert "5 Mar 2030, 00:30 CET" in client.get(URL).content.decode()


@pytest.mark.parametrize(("params", "message"), [
    ({"since": "2030-02-31"}, "Enter a date as year-month-day"),
    ({"until": "yesterday"}, "Enter a date as year-month-day"),
    ({"since": "1900-01-01"}, "Choose a date in 2000 or later."),
    ({"until": "9999-12-31"}, "Choose a date in 2100 or earlier."),
    ({"since": "2030-03-06", "until": "2030-03-04"}, "The end date is before the start date"),
    ({"outcome": "maybe"}, "Choose one of the outcomes in the list."),
    ({"person": "nobody@northwind.example"}, "Choose a person from the list"),
])
def test_bad_filters_get_a_clear_message_and_a_400(alice: Any, trail: None,
                                                   params: dict[str, str], message: str) -> None:
    response = client_for(alice).get(URL, params)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert 'aria-invalid="true"' in page
    assert not response.context["rows"]
    # The dates as typed stay in the form (a select can only show its own choices).
    for name in ("since", "until"):
        if name in params:
            assert f'value="{params[name]}"' in page


def test_a_page_number_out_of_range_shows_the_last_page(alice: Any, trail: None) -> None:
    response = client_for(alice).get(URL, {"page": "999"})
    assert response.status_code == 200
    response = client_for(alice).get(URL, {"page": "not-a-number"})
    assert response.status_code == 200


def test_pages_hold_fifty_and_keep_the_filter(alice: Any, bob: Any, settings: Any) -> None:
    for minute in range(history.PER_PAGE + 5):
        event(Tag.LINK_EXPIRED_USE, bob, T0 + timedelta(minutes=minute))
    client = client_for(alice)
    first = client.get(URL, {"outcome": "failure"})
    assert len(first.context["rows"]) == history.PER_PAGE
    page = first.content.decode()
    assert "?outcome=failure&amp;page=2" in page
    second = client.get(URL, {"outcome": "failure", "page": "2"})
    assert len(second.context["rows"]) == 5


def test_the_page_costs_the_same_queries_for_few_or_many_rows(alice: Any, bob: Any) -> None:
    client = client_for(alice)
    event(Tag.LINK_REDEEMED, bob, T0, method="email")
    client.get(URL)  # warm the session and the user
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    for minute in range(30):
        event(Tag.OIDC_SUCCEEDED, bob, T0 + timedelta(minutes=minute), method="google")
    with CaptureQueriesContext(connection) as many:
        client.get(URL)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_people_who_are_not_admins_cannot_see_the_history(bob: Any, trail: None) -> None:
    client = client_for(bob)
    assert client.get(URL).status_code == 403
    assert client.get(EXPORT).status_code == 403
    assert Client().get(URL).status_code == 302  # signed out: to the sign-in page


def read_export(response: Any) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="sign-in-history-')
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_export_has_utc_iso_times_and_the_admins_zone(alice: Any, trail: None) -> None:
    alice.time_zone = "America/New_York"
    alice.save(update_fields=["time_zone"])
    header, *rows = read_export(client_for(alice).get(EXPORT, {"person": "bob@northwind.example"}))
    assert header == ["Time (UTC, ISO 8601)", "Time (America/New_York)", "Person",
                      "What happened", "Method", "Outcome", "Browser", "IP address",
                      "Event code"]
    assert rows == [
        ["2030-03-05T09:00:00Z", "5 Mar 2030, 04:00 EST", "bob@northwind.example",
         "Signed in", "Google", "Success", "Chrome on Windows", "203.0.113.7",
         "signin:oidc:succeeded"],
        ["2030-03-04T10:00:00Z", "4 Mar 2030, 05:00 EST", "bob@northwind.example",
         "Used an expired link", "Email link", "Failure", "Chrome on Windows", "203.0.113.7",
         "signin:link:expired_use"],
    ]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_cells_that_a_spreadsheet_would_run_get_an_apostrophe(start: str) -> None:
    payload = f'{start}HYPERLINK("http://evil.example","x")'
    assert history.safe_cell(payload) == "'" + payload
    assert history.safe_cell("alice@northwind.example") == "alice@northwind.example"


@pytest.mark.parametrize("start", ["=", "+", "-"])
def test_export_of_a_person_named_like_a_formula_is_defused(alice: Any, northwind: Any,
                                                            start: str) -> None:
    mallory = make_user(f"{start}cmd@northwind.example", northwind)
    event(Tag.LINK_REDEEMED, mallory, T0, method="email")
    _, row = read_export(client_for(alice).get(EXPORT))
    assert row[2] == f"'{start}cmd@northwind.example"
    assert all(not cell.startswith(history.FORMULA_STARTS) for cell in row), row


def test_export_is_bounded(alice: Any, bob: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "EXPORT_LIMIT", 3)
    for minute in range(5):
        event(Tag.LINK_REDEEMED, bob, T0 + timedelta(minutes=minute), method="email")
    _, *rows = read_export(client_for(alice).get(EXPORT))
    assert [r[0] for r in rows] == ["2030-03-04T09:04:00Z", "2030-03-04T09:03:00Z",
                                    "2030-03-04T09:02:00Z"]


def test_export_follows_the_date_filter(alice: Any, trail: None) -> None:
    _, *rows = read_export(client_for(alice).get(EXPORT, {"since": "2030-03-06"}))
    assert [r[3] for r in rows] == ["Signed in"] and rows[0][4] == "Passkey"
