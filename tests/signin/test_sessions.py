"""Server-side sessions: rotation at sign-in, real sign-out, timeouts, "Your sessions"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.middleware import SessionMiddleware
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.test import Client, RequestFactory

from portal.accounts.models import User
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.core import session_store
from portal.signin.flows.finish import finish_sign_in
from portal.signin.models import UserSession
from portal.signin.sessions import active_sessions
from tests.factories import make_org, make_user

pytestmark = pytest.mark.django_db

FIREFOX_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 "
                   "Firefox/128.0")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
CHROME_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/126.0.0.0 Safari/537.36")
T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
SESSIONS = "/signin/sessions/"


def sign_in(client: Client, user: User, *, method: str = "email", agent: str = FIREFOX_WINDOWS,
            ip: str = "203.0.113.5") -> UserSession:
    """Sign ``client`` in through the real ``finish_sign_in``, as a sign-in view would."""
    request = RequestFactory().get("/signin/", HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    if cookie is not None:
        request.COOKIES[settings.SESSION_COOKIE_NAME] = cookie.value
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    request.user = AnonymousUser()
    row = finish_sign_in(request, user, method, event=Tag.LINK_REDEEMED)
    client.cookies[settings.SESSION_COOKIE_NAME] = request.session.session_key or ""
    client.defaults["HTTP_USER_AGENT"] = agent
    return row


def browser(agent: str = FIREFOX_WINDOWS) -> Client:
    return Client(HTTP_USER_AGENT=agent)


def is_signed_in(client: Client) -> bool:
    """Ask the server, not the cookie jar: the sessions page needs a live session."""
    response = client.get(SESSIONS)
    assert response.status_code in (200, 302)
    return response.status_code == 200


@pytest.fixture
def bob() -> User:
    return make_user("bob@contoso.example", make_org("Contoso", ["contoso.example"]))


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(T0, tick=False) as coordinates:
        yield coordinates


# --- Signing in


def test_sign_in_rotates_a_session_key_set_before_sign_in(alice: User) -> None:
    # An attacker who planted a session cookie in the victim's browser knows its key.
    planted = session_store.store()  # the configured engine: with Redis, a cached copy too
    planted["visited"] = True
    planted.save()
    fixated = planted.session_key
    assert fixated is not None
    victim = browser()
    victim.cookies[settings.SESSION_COOKIE_NAME] = fixated

    row = sign_in(victim, alice)

    assert row.session_key != fixated
    assert victim.cookies[settings.SESSION_COOKIE_NAME].value == row.session_key
    assert not Session.objects.filter(session_key=fixated).exists()
    attacker = browser()
    attacker.cookies[settings.SESSION_COOKIE_NAME] = fixated
    assert not is_signed_in(attacker)
    assert is_signed_in(victim)


def test_sign_in_records_method_ip_and_device(alice: User) -> None:
    row = sign_in(browser(), alice, method="google", agent=SAFARI_IPHONE, ip="198.51.100.7")
    row.refresh_from_db()
    assert (row.user, row.method, row.ip, row.user_agent) == (alice, "google", "198.51.100.7",
                                                               SAFARI_IPHONE)
    assert row.ended_at is None


def test_signing_in_as_someone_else_ends_the_previous_listing(alice: User, bob: User) -> None:
    shared = browser()
    first = sign_in(shared, alice)
    second = sign_in(shared, bob)
    first.refresh_from_db()
    assert first.ended_at is not None
    assert active_sessions(alice) == []
    assert active_sessions(bob) == [second]


# --- Signing out


def test_sign_out_deletes_the_server_side_session(alice: User) -> None:
    client = browser()
    row = sign_in(client, alice)
    old_cookie = row.session_key

    response = client.post("/signin/signout/")

    assert response.status_code == 302
    assert response["Location"] == "/signin/signed-out/"
    assert not Session.objects.filter(session_key=old_cookie).exists()
    row.refresh_from_db()
    assert row.ended_at is not None
    # A copy of the old cookie (another tab, a thief) is not signed in any more.
    replay = browser()
    replay.cookies[settings.SESSION_COOKIE_NAME] = old_cookie
    assert not is_signed_in(replay)
    assert not is_signed_in(client)
    event = AuthEvent.objects.get(tag=Tag.SIGNED_OUT)
    assert (event.user, event.email) == (alice, "alice@northwind.example")


def test_get_signout_never_signs_out(alice: User) -> None:
    client = browser()
    row = sign_in(client, alice)

    response = client.get("/signin/signout/")

    assert response.status_code == 200
    page = response.content.decode()
    assert '<form method="post" action="/signin/signout/">' in page
    assert ">Sign out</button>" in page
    assert Session.objects.filter(session_key=row.session_key).exists()
    assert is_signed_in(client)
    assert not AuthEvent.objects.filter(tag=Tag.SIGNED_OUT).exists()


def test_head_signout_never_signs_out(alice: User) -> None:
    client = browser()
    sign_in(client, alice)
    client.head("/signin/signout/")
    assert is_signed_in(client)


def test_get_signout_when_signed_out_leads_to_sign_in() -> None:
    response = browser().get("/signin/signout/")
    assert response.status_code == 302
    assert response["Location"] == "/signin/"


def test_signed_out_page_says_the_session_ended_on_the_server(alice: User) -> None:
    client = browser()
    sign_in(client, alice)
    response = client.post("/signin/signout/", follow=True)
    page = response.content.decode()
    assert "You are signed out." in page
    assert "ended on our server" in page
    assert 'href="/signin/"' in page


def test_sign_out_needs_the_csrf_token(alice: User) -> None:
    # Otherwise any site could sign people out by posting a form at us.
    client = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=FIREFOX_WINDOWS)
    sign_in(client, alice)
    assert client.post("/signin/signout/").status_code == 403
    assert is_signed_in(client)


# --- Your sessions


def test_sessions_page_lists_every_session_of_the_user(alice: User, bob: User) -> None:
    laptop, phone = browser(FIREFOX_WINDOWS), browser(SAFARI_IPHONE)
    mine = sign_in(laptop, alice, method="email", agent=FIREFOX_WINDOWS, ip="203.0.113.5")
    other = sign_in(phone, alice, method="google", agent=SAFARI_IPHONE, ip="198.51.100.7")
    sign_in(browser(CHROME_LINUX), bob, agent=CHROME_LINUX, ip="192.0.2.99")

    response = laptop.get(SESSIONS)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Your sessions" in page
    assert "Firefox on Windows" in page and "Safari on iPhone" in page
    assert "Email link" in page and "Google" in page
    assert "203.0.113.5" in page and "198.51.100.7" in page
    assert page.count("This browser") == 1
    assert page.index("This browser") > page.index("Firefox on Windows")
    # One "Sign out" per other session; the current one signs out from the header instead.
    assert f'action="/signin/sessions/{other.pk}/end/"' in page
    assert f'action="/signin/sessions/{mine.pk}/end/"' not in page
    assert "Sign out everywhere else" in page
    # Someone else's sessions are not shown, and no page ever carries a session key.
    assert "Chrome on Linux" not in page and "192.0.2.99" not in page
    assert mine.session_key not in page and other.session_key not in page
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]


def test_sessions_page_needs_sign_in() -> None:
    response = browser().get(SESSIONS)
    assert response.status_code == 302
    assert response["Location"].startswith("/signin/?next=/signin/sessions/")


def test_ending_a_session_from_another_browser_kills_it(alice: User) -> None:
    laptop, phone = browser(FIREFOX_WINDOWS), browser(SAFARI_IPHONE)
    sign_in(laptop, alice)
    stolen = sign_in(phone, alice, agent=SAFARI_IPHONE)

    response = laptop.post(f"/signin/sessions/{stolen.pk}/end/", follow=True)

    assert "That session has been signed out." in response.content.decode()
    assert not is_signed_in(phone)
    assert is_signed_in(laptop)
    assert not Session.objects.filter(session_key=stolen.session_key).exists()
    stolen.refresh_from_db()
    assert stolen.ended_at is not None
    assert AuthEvent.objects.filter(tag=Tag.SESSION_ENDED, user=alice).count() == 1
    assert "Safari on iPhone" not in laptop.get(SESSIONS).content.decode()


def test_sign_out_everywhere_else_keeps_the_current_session(alice: User) -> None:
    laptop, phone, desktop = browser(FIREFOX_WINDOWS), browser(SAFARI_IPHONE), browser(
        CHROME_LINUX)
    kept = sign_in(laptop, alice)
    sign_in(phone, alice, agent=SAFARI_IPHONE)
    sign_in(desktop, alice, agent=CHROME_LINUX)

    response = laptop.post("/signin/sessions/end-others/", follow=True)

    assert "Signed out of 2 other sessions." in response.content.decode()
    assert is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert not is_signed_in(desktop)
    assert active_sessions(alice) == [kept]


def test_sign_out_everywhere_else_with_no_others_says_so(alice: User) -> None:
    laptop = browser()
    sign_in(laptop, alice)
    response = laptop.post("/signin/sessions/end-others/", follow=True)
    assert "There were no other sessions to sign out." in response.content.decode()
    assert is_signed_in(laptop)


def test_user_cannot_end_another_users_session(alice: User, bob: User) -> None:
    mallory_browser = browser()
    sign_in(mallory_browser, alice)
    bobs_browser = browser(CHROME_LINUX)
    bobs = sign_in(bobs_browser, bob, agent=CHROME_LINUX)

    response = mallory_browser.post(f"/signin/sessions/{bobs.pk}/end/", follow=True)

    # Same answer as for an id that does not exist: nothing tells whose id it was.
    assert "That session had already ended." in response.content.decode()
    assert is_signed_in(bobs_browser)
    bobs.refresh_from_db()
    assert bobs.ended_at is None
    assert not AuthEvent.objects.filter(tag=Tag.SESSION_ENDED).exists()


def test_sign_out_everywhere_else_leaves_other_users_alone(alice: User, bob: User) -> None:
    alices, bobs = browser(), browser(CHROME_LINUX)
    sign_in(alices, alice)
    sign_in(bobs, bob, agent=CHROME_LINUX)
    alices.post("/signin/sessions/end-others/")
    assert is_signed_in(bobs)


def test_ending_this_browsers_own_row_signs_it_out(alice: User) -> None:
    laptop = browser()
    mine = sign_in(laptop, alice)
    response = laptop.post(f"/signin/sessions/{mine.pk}/end/")
    assert response["Location"] == "/signin/signed-out/"
    assert not is_signed_in(laptop)
    assert AuthEvent.objects.filter(tag=Tag.SIGNED_OUT).count() == 1


@pytest.mark.parametrize("session_id", ["0", "99999999999999999999999999"])
def test_unknown_or_absurd_session_id_is_no_error(alice: User, session_id: str) -> None:
    laptop = browser()
    sign_in(laptop, alice)
    response = laptop.post(f"/signin/sessions/{session_id}/end/")
    assert response.status_code == 302
    assert is_signed_in(laptop)


def test_ending_a_session_needs_post(alice: User) -> None:
    laptop, phone = browser(), browser(SAFARI_IPHONE)
    sign_in(laptop, alice)
    other = sign_in(phone, alice, agent=SAFARI_IPHONE)
    assert laptop.get(f"/signin/sessions/{other.pk}/end/").status_code == 405
    assert laptop.get("/signin/sessions/end-others/").status_code == 405
    assert is_signed_in(phone)


# --- Timeouts


def test_idle_session_ends_after_session_idle_seconds(alice: User, settings: Any,
                                                      clock: time_machine.Coordinates) -> None:
    settings.SESSION_IDLE_SECONDS = 30 * 60
    laptop = browser()
    row = sign_in(laptop, alice)

    clock.shift(timedelta(minutes=30))
    assert is_signed_in(laptop)  # exactly the limit: still fine, and now active again
    clock.shift(timedelta(minutes=30, seconds=1))
    assert not is_signed_in(laptop)

    assert not Session.objects.filter(session_key=row.session_key).exists()
    row.refresh_from_db()
    assert row.ended_at is not None
    assert AuthEvent.objects.filter(tag="signin:session:timed_out", user=alice,
                                    reason="idle").count() == 1


def test_activity_keeps_a_session_alive_past_the_idle_limit(
        alice: User, settings: Any, clock: time_machine.Coordinates) -> None:
    settings.SESSION_IDLE_SECONDS = 30 * 60
    laptop = browser()
    row = sign_in(laptop, alice)
    for _ in range(4):
        clock.shift(timedelta(minutes=20))
        assert is_signed_in(laptop)
    row.refresh_from_db()
    assert row.last_seen_at == T0 + timedelta(minutes=80)


def test_absolute_timeout_ends_even_an_active_session(
        alice: User, settings: Any, clock: time_machine.Coordinates) -> None:
    settings.SESSION_IDLE_SECONDS = 30 * 60
    settings.SESSION_COOKIE_AGE = 2 * 3600
    laptop = browser()
    row = sign_in(laptop, alice)
    for _ in range(6):  # active every 20 minutes, up to exactly two hours
        clock.shift(timedelta(minutes=20))
        assert is_signed_in(laptop)
    clock.shift(timedelta(seconds=1))
    assert not is_signed_in(laptop)
    assert not Session.objects.filter(session_key=row.session_key).exists()
    assert AuthEvent.objects.filter(tag="signin:session:timed_out", user=alice,
                                    reason="absolute_limit").count() == 1


def test_session_begun_without_finish_sign_in_still_gets_an_absolute_limit(
        alice: User, settings: Any, clock: time_machine.Coordinates) -> None:
    settings.SESSION_IDLE_SECONDS = 30 * 60
    settings.SESSION_COOKIE_AGE = 3600
    laptop = browser()
    laptop.force_login(alice, backend="portal.accounts.backends.PasswordlessBackend")
    assert is_signed_in(laptop)  # its clock starts here
    for _ in range(3):
        clock.shift(timedelta(minutes=20))
        assert is_signed_in(laptop)
    clock.shift(timedelta(seconds=1))
    assert not is_signed_in(laptop)


def test_sessions_page_leaves_out_idle_sessions(alice: User, settings: Any,
                                                clock: time_machine.Coordinates) -> None:
    settings.SESSION_IDLE_SECONDS = 30 * 60
    laptop, phone = browser(), browser(SAFARI_IPHONE)
    sign_in(phone, alice, agent=SAFARI_IPHONE)
    clock.shift(timedelta(minutes=31))
    sign_in(laptop, alice)
    page = laptop.get(SESSIONS).content.decode()
    assert "Safari on iPhone" not in page
    assert "Firefox on Windows" in page
    assert "Sign out everywhere else" not in page
