"""The email-link journey called directly, as a view or a JSON API would (flows/magic_link.py).

Each test builds the request a browser would send (``request_as``), calls one step of the
journey, and checks its result and what it stored. The thin view tests live beside these
in test_magic_link_request.py, test_magic_link_redeem.py and test_magic_link_code.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import signing
from django.test import Client
from django.utils import timezone

from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.signin.errors import (
    CodeWrong,
    LinkAlreadyUsed,
    LinkRevoked,
    LinkUnknown,
    RateLimited,
    ResendTooSoon,
)
from portal.signin.flows import magic_link as flow
from portal.signin.flows.finish import finish_sign_in
from portal.signin.models import SignInRequest, UserSession
from tests.signin.magic import ask, code_of, deliver_and_read, request_as, settle

pytestmark = pytest.mark.django_db
ALICE = "alice@northwind.example"


def _signed_in_as(client: Client) -> str | None:
    response = client.get("/")
    return None if response.status_code == 302 else response.wsgi_request.user.email


# --- open_link ----------------------------------------------------------------------------

def test_open_link_in_the_asking_browser_signs_in(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE, next_url="/requests/")
    (link,) = deliver_and_read(smtp)
    request = request_as(browser, link.path)
    outcome = flow.open_link(request, link.token)
    assert outcome == flow.SignedIn(ALICE, "/requests/")
    settle(browser, request)
    assert _signed_in_as(browser) == ALICE
    assert SignInRequest.objects.get().consumed_at is not None


@pytest.mark.parametrize("safe_method", [True, False])
def test_open_link_elsewhere_or_by_head_consumes_nothing(alice, smtp, safe_method) -> None:
    asking = Client()
    ask(asking, ALICE)
    (link,) = deliver_and_read(smtp)
    # A HEAD from the asking browser itself, or a GET from anyone else.
    client = Client() if safe_method else asking
    outcome = flow.open_link(request_as(client, link.path), link.token, safe_method=safe_method)
    assert isinstance(outcome, flow.AwaitingConfirmation)
    sign_in = SignInRequest.objects.get()
    assert sign_in.consumed_at is None and sign_in.opened_at is not None


def test_confirm_link_with_the_ticket_signs_in_the_other_browser(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    phone = Client()
    opened = flow.open_link(request_as(phone, link.path), link.token)
    assert isinstance(opened, flow.AwaitingConfirmation)
    ticket = opened.ticket
    request = request_as(phone, "/signin/confirm/", "post")
    assert flow.confirm_link(request, ticket).email == ALICE
    settle(phone, request)
    assert _signed_in_as(phone) == ALICE
    assert AuthEvent.objects.filter(tag=Tag.LINK_CONFIRMED).count() == 1
    with pytest.raises(LinkAlreadyUsed):
        flow.confirm_link(request_as(Client(), "/signin/confirm/", "post"), ticket)


def test_a_forged_or_stale_ticket_is_refused(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    opened = flow.open_link(request_as(Client(), link.path), link.token)
    assert isinstance(opened, flow.AwaitingConfirmation)
    real = opened.ticket
    sign_in = SignInRequest.objects.get()
    forged = signing.dumps({"id": sign_in.pk, "hash": "0" * 64}, salt=flow.TICKET_SALT)
    tampered = real[:-2] + ("AA" if not real.endswith("AA") else "BB")
    for ticket in (forged, tampered, "", "not a ticket"):
        with pytest.raises(LinkUnknown):
            flow.opened_request(request_as(Client(), "/signin/confirm/"), ticket)
    with time_machine.travel(timezone.now() + timedelta(
            seconds=settings.MAGIC_LINK_TTL_SECONDS + 1), tick=False), pytest.raises(LinkUnknown):
        flow.opened_request(request_as(Client(), "/signin/confirm/"), real)


# --- Nothing stored for cookie-less visitors --------------------------------------------

def test_a_thousand_cookieless_link_loads_store_no_session_and_a_bounded_audit(
        alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    used = Client()
    used.get(link.path)
    assert used.get(link.path).status_code == 302  # opened; confirmation pending
    sessions_before = Session.objects.count()
    audit_before = AuthEvent.objects.count()
    scanner = Client()
    paths = [link.path, "/signin/link/" + "A" * 43 + "/", "/signin/link/junk/"]
    statuses = set()
    for n in range(1000):
        scanner.cookies.clear()
        statuses.add(scanner.get(paths[n % 3]).status_code)
    assert statuses == {302}
    assert Session.objects.count() == sessions_before
    budget = int(settings.SIGNIN_RATE_LIMITS["link_audit_ip"].split("/")[0])
    assert AuthEvent.objects.count() - audit_before <= budget
    assert SignInRequest.objects.get().consumed_at is None


# --- redeem_code --------------------------------------------------------------------------

def test_code_tries_are_counted_per_address_across_requests(alice, smtp, settings) -> None:
    """NIST SP 800-63B-4 §3.1.3.2: a new secret does not reset the failed attempts."""
    settings.SIGNIN_RATE_LIMITS = {**settings.SIGNIN_RATE_LIMITS, "code_address": "6/1d"}
    browser = Client()
    start = timezone.now()
    for round_ in range(3):
        with time_machine.travel(start + timedelta(minutes=2 * round_), tick=False):
            ask(browser, ALICE)
            smtp.clear()
            (link,) = deliver_and_read(smtp)
            code = code_of(link)
            wrong = "000000" if code != "000000" else "111111"
            for _ in range(3 if round_ < 2 else 0):
                request = request_as(browser, "/signin/code/", "post")
                with pytest.raises(CodeWrong):
                    flow.redeem_code(request, wrong)
    # Six tries spent over two requests: the third request's right code is not checked.
    with time_machine.travel(start + timedelta(minutes=4), tick=False):
        with pytest.raises(RateLimited):
            flow.redeem_code(request_as(browser, "/signin/code/", "post"), code)
        # The link of the same email still works.
        request = request_as(browser, link.path)
        assert isinstance(flow.open_link(request, link.token), flow.SignedIn)


# --- request_link -------------------------------------------------------------------------

def test_asking_again_within_the_cooldown_says_when_and_sends_nothing(alice) -> None:
    browser = Client()
    ask(browser, ALICE)
    request = request_as(browser, "/signin/", "post")
    with pytest.raises(ResendTooSoon) as too_soon:
        flow.request_link(request, email=ALICE)
    assert 0 < too_soon.value.retry_after <= settings.SIGNIN_RESEND_COOLDOWN_SECONDS
    assert SignInRequest.objects.count() == 1
    page = ask(browser, ALICE)
    assert page.status_code == 429
    assert int(page["Retry-After"]) > 0
    assert b"A link is already on its way" in page.content


def test_a_stranger_cannot_spend_the_owners_allowance(alice, smtp) -> None:
    # Alice signed in on her laptop once: it carries the signed device cookie.
    laptop = Client()
    ask(laptop, ALICE)
    (link,) = deliver_and_read(smtp)
    laptop.get(link.path)
    assert _signed_in_as(laptop) == ALICE
    assert settings.SIGNIN_DEVICE_COOKIE in laptop.cookies
    laptop.post("/signin/signout/")
    # A stranger spends the rest of the address's allowance (the laptop's own first request
    # counted too: it had no device cookie yet) from browsers of their own.
    allowance = int(settings.SIGNIN_RATE_LIMITS["address"].split("/")[0])
    for n in range(allowance - 1):
        assert ask(Client(), ALICE, REMOTE_ADDR=f"203.0.113.{n + 1}").status_code == 302
    assert ask(Client(), ALICE, REMOTE_ADDR="203.0.113.99").status_code == 429
    # The laptop still gets its link, and it works.
    smtp.clear()
    assert ask(laptop, ALICE).status_code == 302
    from portal.mail.worker import deliver_due
    deliver_due()
    latest = SignInRequest.objects.order_by("-created_at", "-id").first()
    assert latest is not None and latest.delivery == SignInRequest.Delivery.SENT


def test_a_device_cookie_for_another_address_earns_nothing(alice, smtp) -> None:
    laptop = Client()
    ask(laptop, ALICE)
    (link,) = deliver_and_read(smtp)
    laptop.get(link.path)
    laptop.post("/signin/signout/")
    victim = "bob@northwind.example"
    allowance = int(settings.SIGNIN_RATE_LIMITS["address"].split("/")[0])
    for n in range(allowance):
        ask(Client(), victim, REMOTE_ADDR=f"203.0.113.{n + 1}")
    assert ask(laptop, victim).status_code == 429


# --- finish_sign_in -----------------------------------------------------------------------

def _sign_in_by_link(browser: Client, smtp, **ask_extra: str) -> None:
    smtp.clear()
    ask(browser, ALICE, **ask_extra)
    (link,) = deliver_and_read(smtp)
    assert browser.get(link.path).status_code == 302


def _sign_in_by_code(browser: Client, smtp) -> None:
    smtp.clear()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    assert browser.post("/signin/code/", {"code": code_of(link)}).status_code == 302


@pytest.mark.parametrize("again", [_sign_in_by_link, _sign_in_by_code])
def test_signing_in_again_ends_the_previous_session_row(alice, smtp, again) -> None:
    browser = Client()
    _sign_in_by_link(browser, smtp)
    first = UserSession.objects.get()
    first_key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=False):
        again(browser, smtp)
    second_key = browser.cookies[settings.SESSION_COOKIE_NAME].value
    assert second_key != first_key
    first.refresh_from_db()
    assert first.ended_at is not None
    live = UserSession.objects.filter(ended_at__isnull=True)
    assert [row.session_key for row in live] == [second_key]
    assert not Session.objects.filter(session_key=first_key).exists()


def test_finish_sign_in_cycles_the_key_once_revokes_links_and_audits_once(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)  # an outstanding link, and an anonymous session with a key
    deliver_and_read(smtp)
    request = request_as(browser, "/signin/")
    planted = request.session.session_key
    row = finish_sign_in(request, alice, "google", event=Tag.OIDC_SUCCEEDED, provider="google")
    assert request.session.session_key not in (None, planted)
    assert row.session_key == request.session.session_key and row.method == "google"
    assert not Session.objects.filter(session_key=planted).exists()
    assert SignInRequest.objects.get().revoked_at is not None
    events = AuthEvent.objects.filter(tag=Tag.OIDC_SUCCEEDED)
    assert events.count() == 1 and events.get().detail["method"] == "google"
    settle(browser, request)
    assert _signed_in_as(browser) == ALICE
    # The link that was still out now says it was revoked by this sign-in.
    with pytest.raises(LinkRevoked):
        flow.opened_request(request_as(Client(), "/"), signing.dumps(
            {"id": SignInRequest.objects.get().pk,
             "hash": SignInRequest.objects.get().token_hash}, salt=flow.TICKET_SALT))
