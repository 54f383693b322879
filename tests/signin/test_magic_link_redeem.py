"""Using a link: rules 3 to 8 (secret, single use, expiry, scanners, after the click, dead links)."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from portal.audit.models import AuthEvent
from portal.core.http import safe_next
from portal.mail.models import OutboundMessage
from portal.mail.worker import deliver_due
from portal.signin.errors import LinkAlreadyUsed
from portal.signin.flows import magic_link as flow
from portal.signin.models import SignInRequest
from tests.factories import make_org, make_user
from tests.passkeys.support import passkey_client
from tests.signin.magic import ask, deliver_and_read, request_as

pytestmark = pytest.mark.django_db
ALICE = "alice@northwind.example"


def confirm_elsewhere(link, client: Client | None = None):
    """Open ``link`` in a browser that did not ask, and press "Continue"."""
    client = client or Client()
    opened = client.get(link.path)
    assert opened.status_code == 302, opened.status_code
    return client.post(opened["Location"])


def _signed_in_as(client: Client) -> str | None:
    response = client.get("/")
    return None if response.status_code == 302 else response.wsgi_request.user.email


def test_secret_has_256_bits_and_only_its_sha256_is_stored(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    assert len(link.token) >= 43  # 32 random bytes in URL-safe base64
    sign_in = SignInRequest.objects.get()
    assert sign_in.token_hash == hashlib.sha256(link.token.encode()).hexdigest()
    # Nowhere in the database, not in the outbox, not in the audit trail.
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608
            assert link.token not in repr(cursor.fetchall()), table


def test_same_browser_signs_in_with_one_click_and_lands_on_next(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE, next_url="/requests/?status=open")
    (link,) = deliver_and_read(smtp)
    response = browser.get(link.path)
    assert response.status_code == 302
    assert response["Location"] == "/requests/?status=open"
    assert response["Referrer-Policy"] == "no-referrer"
    assert _signed_in_as(browser) == ALICE


def test_next_in_the_link_address_is_ignored(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE, next_url="/requests/")
    (link,) = deliver_and_read(smtp)
    assert "next" not in link.url
    response = browser.get(link.path + "?next=https://evil.example/")
    assert response["Location"] == "/requests/"


@pytest.mark.parametrize("evil", [
    "//evil.example", "https://evil.example", "/\\evil.example", "\\\\evil.example",
    "%2F%2Fevil.example", "/%2F/evil.example", "http:evil.example", "javascript:alert(1)",
    "///evil.example", "/\tevil.example", " //evil.example", "//evil.example/%2e%2e",
])
def test_open_redirect_attempts_land_on_the_portal_home(evil: str, alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE, next_url=evil)
    (link,) = deliver_and_read(smtp)
    location = browser.get(link.path)["Location"]
    assert location == "/" or (location.startswith("/") and not location.startswith("//")
                               and "\\" not in location and "evil" not in location.split("/")[1])


@given(st.text(max_size=200))
def test_safe_next_only_ever_returns_a_same_site_path(raw: str) -> None:
    result = safe_next(raw)
    assert result.startswith("/")
    assert not result.startswith("//")
    assert "\\" not in result
    assert all(ord(ch) >= 32 for ch in result)


def test_session_key_is_rotated_at_sign_in(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    before = browser.session.session_key
    assert before
    (link,) = deliver_and_read(smtp)
    browser.get(link.path)
    assert browser.session.session_key != before


def test_loading_a_link_elsewhere_consumes_nothing(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    scanner = Client()
    for _ in range(5):
        opened = scanner.get(link.path)
        assert opened["Referrer-Policy"] == "no-referrer"
        assert opened["Location"] == "/signin/confirm/"  # the token leaves the address bar
        page = scanner.get(opened["Location"])
        assert page.status_code == 200
        assert b"Sign in as alice@northwind.example?" in page.content
        assert b"<script" not in page.content  # no auto-submit: scanners run JavaScript
        assert scanner.head(link.path).status_code == 302
        assert Client().head(link.path).status_code == 302
    assert SignInRequest.objects.get().consumed_at is None
    assert _signed_in_as(scanner) is None
    # A person in another browser presses the button and is signed in.
    person = Client()
    assert confirm_elsewhere(link, person)["Location"] == "/"
    assert _signed_in_as(person) == ALICE
    assert AuthEvent.objects.filter(tag="signin:link:confirmed").count() == 1


def test_head_never_consumes_even_in_the_asking_browser(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    browser.head(link.path)
    assert SignInRequest.objects.get().consumed_at is None


def test_confirm_needs_csrf(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    forger = Client(enforce_csrf_checks=True)
    forger.get(link.path)
    assert forger.post("/signin/confirm/").status_code == 403
    assert Client().post(link.path).status_code == 405  # the link itself never takes a POST
    assert SignInRequest.objects.get().consumed_at is None


def test_link_used_twice_is_refused(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    browser.get(link.path)
    again = Client().get(link.path, follow=True)
    assert again.status_code == 410
    assert b"This link has already been used" in again.content
    assert b"Email me a fresh link" in again.content
    with pytest.raises(LinkAlreadyUsed):
        flow.open_link(request_as(Client(), link.path), link.token)


def test_expiry_boundary(alice, smtp, settings) -> None:
    settings.MAGIC_LINK_TTL_SECONDS = 900
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        ask(Client(), ALICE)
        (link,) = deliver_and_read(smtp)
        clock.move_to(start + timedelta(minutes=14, seconds=59))
        assert Client().get(link.path, follow=True).status_code == 200
        clock.move_to(start + timedelta(minutes=15))
        expired = Client().get(link.path, follow=True)
        assert expired.status_code == 410
        assert b"This link has expired" in expired.content
    assert AuthEvent.objects.filter(tag="signin:link:expired_use").exists()


def test_link_that_would_arrive_expired_is_not_sent(alice, smtp) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        ask(Client(), ALICE)
        clock.move_to(start + timedelta(minutes=14, seconds=30))  # the worker was down
        deliver_due()
    assert smtp.messages == []
    assert OutboundMessage.objects.get().status == OutboundMessage.Status.EXPIRED
    assert AuthEvent.objects.filter(tag="signin:link:expired_unsent", email=ALICE).exists()


def test_newer_request_supersedes_older_links(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (first,) = deliver_and_read(smtp)
    smtp.clear()
    ask(Client(), ALICE)
    (second,) = deliver_and_read(smtp)
    old = browser.get(first.path, follow=True)
    assert old.status_code == 410 and b"A newer link was sent" in old.content
    assert confirm_elsewhere(second).status_code == 302


def test_queued_older_link_is_never_sent(alice, smtp) -> None:
    ask(Client(), ALICE)
    ask(Client(), ALICE)  # before the worker ran
    links = deliver_and_read(smtp)
    assert len(smtp.messages) == 1
    assert confirm_elsewhere(links[0]).status_code == 302


def test_sign_in_revokes_other_outstanding_links(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    # A second, older-style outstanding link, e.g. from another flow, made directly:
    other = SignInRequest.objects.create(email=ALICE, expires_at=timezone.now() + timedelta(
        minutes=10), binding_hash="", token_hash="f" * 64)
    confirm_elsewhere(link)
    other.refresh_from_db()
    assert other.revoked_at is not None


def test_revoked_link_says_so(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    SignInRequest.objects.update(revoked_at=timezone.now())
    page = Client().get(link.path, follow=True)
    assert page.status_code == 410 and b"This link no longer works" in page.content


@pytest.mark.parametrize("token", ["x" * 43, "short", "A" * 200, "%00", "abc.def~"])
def test_unknown_links_get_a_generic_page(token: str) -> None:
    page = Client().get(f"/signin/link/{token}/", follow=True)
    assert page.status_code == 404
    assert b"This link is not valid" in page.content
    assert b"Email me a fresh link" in page.content


def test_fresh_link_form_is_prefilled_only_in_the_asking_browser(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    SignInRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert f'value="{ALICE}"'.encode() in browser.get(link.path, follow=True).content
    assert f'value="{ALICE}"'.encode() not in Client().get(link.path, follow=True).content


def test_disabled_after_the_email_left_cannot_sign_in(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    alice.is_active = False
    alice.save()
    person = Client()
    refused = confirm_elsewhere(link, person)
    assert refused["Location"] == "/signin/link-problem/"
    page = person.get(refused["Location"])
    assert page.status_code == 403
    assert b"This account cannot sign in" in page.content
    assert _signed_in_as(person) is None
    assert SignInRequest.objects.get().consumed_at is None


def test_auto_join_sign_in_creates_the_member(smtp) -> None:
    org = make_org(auto_join=True)
    browser = Client()
    ask(browser, "newcomer@northwind.example")
    (link,) = deliver_and_read(smtp)
    browser.get(link.path)
    assert _signed_in_as(browser) == "newcomer@northwind.example"
    assert org.memberships.filter(user__email="newcomer@northwind.example").exists()


def test_every_step_lands_in_the_audit_trail(alice, smtp) -> None:
    browser = Client(HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
    ask(browser, ALICE, REMOTE_ADDR="203.0.113.8")
    (link,) = deliver_and_read(smtp)
    Client().get(link.path)
    browser.get(link.path)
    browser.get(link.path)  # reuse
    browser.post("/signin/signout/")
    tags = list(AuthEvent.objects.order_by("id").values_list("tag", flat=True))
    assert tags == ["signin:link:requested", "signin:link:sent", "signin:link:opened",
                    "signin:link:redeemed", "signin:link:reused", "signin:session:signed_out"]
    requested = AuthEvent.objects.get(tag="signin:link:requested")
    assert (requested.email, requested.ip) == (ALICE, "203.0.113.8")
    assert "Firefox" in requested.user_agent
    redeemed = AuthEvent.objects.get(tag="signin:link:redeemed")
    assert redeemed.user == alice and redeemed.organization == alice.organization


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_clicks_exactly_one_wins(on_postgres, alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []
    # Four other browsers open the link (each gets its confirmation ticket), then all press
    # "Continue" at once.
    tickets = []
    for _ in range(4):
        opened = flow.open_link(request_as(Client(), link.path), link.token)
        assert isinstance(opened, flow.AwaitingConfirmation)
        tickets.append(opened.ticket)

    def click(ticket: str) -> None:
        barrier.wait(timeout=10)
        try:
            flow.confirm_link(request_as(Client(), "/signin/confirm/", "post"), ticket)
            outcomes.append("won")
        except LinkAlreadyUsed:
            outcomes.append("used")
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(ticket,)) for ticket in tickets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(outcomes) == ["used", "used", "used", "won"]


def test_staff_can_end_a_session_from_the_admin(alice, smtp) -> None:
    from portal.signin.models import UserSession

    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    browser.get(link.path)
    assert _signed_in_as(browser) == ALICE
    staff = passkey_client(make_user("sam@cloudsentry.com", staff=True, superuser=True))
    row = UserSession.objects.get(user=alice)
    response = staff.post("/admin/signin/usersession/", {
        "action": "end_sessions", "_selected_action": [row.pk]})
    assert response.status_code == 302
    assert _signed_in_as(browser) is None
    sign_in = SignInRequest.objects.get()
    page = staff.get(f"/admin/signin/signinrequest/{sign_in.pk}/change/")
    assert page.status_code == 200
    assert sign_in.token_hash.encode() not in page.content


def test_signing_in_again_on_a_signed_in_browser_starts_a_new_session(alice, smtp) -> None:
    browser = Client()
    for round_ in range(2):
        smtp.clear()
        ask(browser, ALICE)
        (link,) = deliver_and_read(smtp)
        before = browser.session.session_key
        assert browser.get(link.path).status_code == 302, round_
        assert browser.session.session_key != before
    assert _signed_in_as(browser) == ALICE
