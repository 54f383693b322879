"""Sensitive actions need a recent sign-in (OWASP ASVS 5.0 7.5): the 15-minute boundary.

Ending other sessions and every change in the staff admin are refused, with a plain "Sign
in again" page, once this browser's sign-in is RECENT_SIGN_IN_SECONDS (900) old; 14:59 is
still allowed. A fresh sign-in from that page brings the person back where they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from portal.accounts.models import User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.signin.models import UserSession
from tests.factories import make_user
from tests.passkeys.support import mark_passkey_session
from tests.signin.magic import deliver_and_read
from tests.signin.test_sessions import CHROME_LINUX, browser, sign_in
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
ALLOWED = timedelta(minutes=14, seconds=59)
REFUSED = timedelta(minutes=15)
SESSIONS = "/signin/sessions/"



def sign_in_staff(client: Client, user: User) -> None:
    """Sign staff in as the admin requires: a session started with a passkey."""
    sign_in(client, user)
    mark_passkey_session(client.cookies[settings.SESSION_COOKIE_NAME].value, user)


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(T0, tick=False) as coordinates:
        yield coordinates


@pytest.fixture
def sam(db: None) -> User:
    return make_user("sam@cloudsentry.com", staff=True, superuser=True)


def two_browsers(user: User) -> tuple[Client, Client, UserSession]:
    """Sign ``user`` in on a laptop and a phone; return both and the phone's session row."""
    laptop, phone = browser(), browser(CHROME_LINUX)
    sign_in(laptop, user)
    other = sign_in(phone, user, agent=CHROME_LINUX)
    return laptop, phone, other


def is_alive(row: UserSession) -> bool:
    row.refresh_from_db()
    return row.ended_at is None and Session.objects.filter(session_key=row.session_key).exists()


@pytest.mark.parametrize(("age", "allowed"), [(ALLOWED, True), (REFUSED, False)])
def test_ending_another_session_needs_a_sign_in_under_fifteen_minutes_old(
        alice: User, clock: time_machine.Coordinates, age: timedelta, allowed: bool) -> None:
    laptop, _, phone = two_browsers(alice)
    clock.move_to(T0 + age)
    response = laptop.post(f"/signin/sessions/{phone.pk}/end/")
    if allowed:
        assert response.status_code == 302
        assert not is_alive(phone)
    else:
        assert response.status_code == 403
        assert "Sign in again to sign out other sessions" in response.content.decode()
        assert is_alive(phone)


@pytest.mark.parametrize(("age", "allowed"), [(ALLOWED, True), (REFUSED, False)])
def test_ending_every_other_session_needs_a_sign_in_under_fifteen_minutes_old(
        alice: User, clock: time_machine.Coordinates, age: timedelta, allowed: bool) -> None:
    laptop, _, phone = two_browsers(alice)
    clock.move_to(T0 + age)
    response = laptop.post("/signin/sessions/end-others/")
    assert response.status_code == (302 if allowed else 403)
    assert is_alive(phone) is not allowed


def test_the_refusal_says_why_offers_a_fresh_sign_in_and_is_audited(
        alice: User, clock: time_machine.Coordinates) -> None:
    laptop, _, phone = two_browsers(alice)
    clock.move_to(T0 + timedelta(hours=2))
    page = laptop.post("/signin/sessions/end-others/").content.decode()
    assert "within the last 15 minutes" in page
    assert "nothing has been changed" in page
    assert 'action="/signin/"' in page and 'name="next" value="/signin/sessions/"' in page
    assert 'value="alice@northwind.example"' in page
    event = AuthEvent.objects.get(tag=Tag.RECENT_SIGN_IN_REQUIRED)
    assert event.user == alice
    assert event.detail["action"] == "sign out other sessions"
    assert is_alive(phone)


def test_signing_this_browser_out_never_needs_a_recent_sign_in(
        alice: User, clock: time_machine.Coordinates) -> None:
    laptop = browser()
    own = sign_in(laptop, alice)
    clock.move_to(T0 + timedelta(hours=3))
    response = laptop.post(f"/signin/sessions/{own.pk}/end/")
    assert response.status_code == 302 and response["Location"] == "/signin/signed-out/"
    assert not is_alive(own)


def test_the_window_is_the_setting(alice: User, clock: time_machine.Coordinates,
                                   settings: object) -> None:
    settings.RECENT_SIGN_IN_SECONDS = 60  # type: ignore[attr-defined]
    laptop, _, phone = two_browsers(alice)
    clock.move_to(T0 + timedelta(seconds=60))
    assert laptop.post("/signin/sessions/end-others/").status_code == 403
    assert is_alive(phone)


def test_a_fresh_email_sign_in_from_the_refusal_returns_to_the_sessions_page(
        alice: User, clock: time_machine.Coordinates, smtp: SMTPServer) -> None:
    laptop, _, phone = two_browsers(alice)
    clock.move_to(T0 + timedelta(hours=1))
    assert laptop.post("/signin/sessions/end-others/").status_code == 403
    # What the page's form posts: the person's own address, and where to come back to.
    asked = laptop.post("/signin/", {"email": alice.email, "next": SESSIONS})
    assert asked.status_code == 302
    (link,) = deliver_and_read(smtp)
    opened = laptop.get(link.path)
    assert opened.status_code == 302 and opened["Location"] == SESSIONS
    assert laptop.post("/signin/sessions/end-others/").status_code == 302
    assert not is_alive(phone)


# --- The staff admin: every POST is a change


def change_address(client: Client, person: User, address: str) -> int:
    url = reverse("admin:accounts_user_change", args=[person.pk])
    form = client.get(url)
    assert form.status_code == 200
    data = {"email": address, "full_name": person.full_name, "is_active": "on",
            "membership-TOTAL_FORMS": "0", "membership-INITIAL_FORMS": "0",
            "membership-MIN_NUM_FORMS": "0", "membership-MAX_NUM_FORMS": "1"}
    return client.post(url, data).status_code


@pytest.mark.parametrize(("age", "allowed"), [(ALLOWED, True), (REFUSED, False)])
def test_a_staff_admin_change_needs_a_sign_in_under_fifteen_minutes_old(
        sam: User, alice: User, clock: time_machine.Coordinates, age: timedelta,
        allowed: bool) -> None:
    staff = browser()
    sign_in_staff(staff, sam)
    clock.move_to(T0 + age)
    status = change_address(staff, alice, "alice.moreno@northwind.example")
    alice.refresh_from_db()
    if allowed:
        assert status == 302
        assert alice.email == "alice.moreno@northwind.example"
    else:
        assert status == 403
        assert alice.email == "alice@northwind.example"
        assert not AuthEvent.objects.filter(tag=Tag.ADMIN_USER_CHANGED).exists()


def test_a_stale_staff_session_still_reads_the_admin_and_comes_back_to_the_same_page(
        sam: User, alice: User, clock: time_machine.Coordinates) -> None:
    staff = browser()
    sign_in_staff(staff, sam)
    clock.move_to(T0 + timedelta(hours=2))
    url = reverse("admin:accounts_user_change", args=[alice.pk])
    assert staff.get(url).status_code == 200
    refused = staff.post(url, {"email": "x@northwind.example"})
    assert refused.status_code == 403
    assert "Sign in again to make changes in the staff admin" in refused.content.decode()
    assert f'name="next" value="{url}"' in refused.content.decode()


def test_admin_deletion_and_bulk_actions_need_a_recent_sign_in_too(
        sam: User, alice: User, clock: time_machine.Coordinates) -> None:
    staff = browser()
    sign_in_staff(staff, sam)
    clock.move_to(T0 + REFUSED)
    delete = staff.post(reverse("admin:accounts_user_delete", args=[alice.pk]), {"post": "yes"})
    bulk = staff.post(reverse("admin:accounts_user_changelist"),
                      {"action": "delete_selected", "_selected_action": [alice.pk],
                       "post": "yes"})
    assert (delete.status_code, bulk.status_code) == (403, 403)
    assert User.objects.filter(pk=alice.pk).exists()


def test_a_stale_staff_session_can_still_sign_out_of_the_admin(
        sam: User, clock: time_machine.Coordinates) -> None:
    staff = browser()
    sign_in_staff(staff, sam)
    clock.move_to(T0 + timedelta(hours=1))
    response = staff.post(reverse("admin:logout"))
    assert response.status_code == 302 and response["Location"] == reverse("signin:signout")
    assert settings.RECENT_SIGN_IN_SECONDS == 900
