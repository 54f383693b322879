"""Approval from another device, number-matched, and strict mode (rule 11, second half).

The journey as a person lives it: the desktop asks and shows a two-digit number; the phone
opens the link, and either signs itself in, or approves the desktop by typing that number,
or says "This wasn't me". The flow is called directly (``request_as``) where the state
machine is the point, and through the views where the page is.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.signin import tokens
from portal.signin.errors import (
    ApprovalLocked,
    LinkAlreadyUsed,
    LinkExpired,
    LinkRefused,
    LinkRevoked,
    NotApproved,
    NumberMalformed,
    NumberWrong,
    SameBrowserOnly,
)
from portal.signin.flows import magic_link as flow
from portal.signin.flows.finish import finish_sign_in
from portal.signin.models import SignInRequest, UserSession
from portal.signin.views import problems
from tests.factories import make_user
from tests.passkeys.support import passkey_client
from tests.signin.magic import Link, ask, code_of, deliver_and_read, request_as, settle

pytestmark = pytest.mark.django_db
ALICE = "alice@northwind.example"
CONFIRM = "/signin/confirm/"


def _signed_in_as(client: Client) -> str | None:
    response = client.get("/")
    return None if response.status_code == 302 else response.wsgi_request.user.email


def _asked(smtp, next_url: str = "") -> tuple[Client, Link]:
    """The desktop asks for a link; the worker sends it."""
    desktop = Client()
    ask(desktop, ALICE, next_url=next_url)
    (link,) = deliver_and_read(smtp)
    return desktop, link


def _ticket(link: Link, phone: Client | None = None) -> str:
    """Open ``link`` on a device that did not ask; return its confirmation ticket."""
    opened = flow.open_link(request_as(phone or Client(), link.path), link.token)
    assert isinstance(opened, flow.AwaitingConfirmation)
    return opened.ticket


def _number_on_screen(desktop: Client) -> str:
    """Read the number the way the person does: off the desktop's "Check your inbox" page."""
    page = desktop.get("/signin/check-inbox/").content.decode()
    match = re.search(r'id="approval-number">(\d\d)</p>', page)
    assert match, "no approval number on the waiting page"
    return match.group(1)


def _other(number: str) -> str:
    return f"{(int(number) + 1) % 100:02d}"


def _approve(ticket: str, number: str) -> flow.Approved:
    return flow.approve(request_as(Client(), CONFIRM, "post"), ticket, number)


def _claim(desktop: Client) -> flow.SignedIn:
    request = request_as(desktop, "/signin/check-inbox/continue/", "post")
    signed_in = flow.claim_approval(request)
    settle(desktop, request)
    return signed_in


def _state(desktop: Client) -> str:
    return str(desktop.get("/signin/check-inbox/status/").json()["state"])


# --- The number -------------------------------------------------------------------------

def test_every_request_gets_a_two_digit_number_from_secrets(alice) -> None:
    ask(Client(), ALICE)
    for n in range(19):  # no account: the same page, a number too
        ask(Client(), f"nobody{n}@northwind.example")
    numbers = list(SignInRequest.objects.values_list("approval_number", flat=True))
    assert all(re.fullmatch(r"[0-9]{2}", number) for number in numbers), numbers
    assert len(set(numbers)) > 1  # twenty equal draws: one chance in 10**38
    drawn = {tokens.generate_number() for _ in range(2000)}
    assert all(re.fullmatch(r"[0-9]{2}", number) for number in drawn)
    assert len(drawn) > 90  # all hundred values come up, not a handful
    assert tokens.clean_number(" 7 ") == "07" and tokens.clean_number("42") == "42"
    for typed in ("", "123", "4a", "٤٢", "-1", "4 2 1"):
        assert tokens.clean_number(typed) is None, typed


def test_the_number_shows_only_on_the_waiting_tab(alice, smtp) -> None:
    desktop, link = _asked(smtp)
    number = _number_on_screen(desktop)
    assert number == SignInRequest.objects.get().approval_number
    phone = Client()
    page = phone.get(phone.get(link.path)["Location"]).content.decode()
    assert 'id="approval-number"' not in page
    assert "Type the number shown on the other screen" in page
    assert "number" not in desktop.get("/signin/check-inbox/status/").json()


# --- Approving --------------------------------------------------------------------------

def test_right_number_approves_and_the_asking_tab_signs_itself_in(alice, smtp) -> None:
    desktop, link = _asked(smtp, next_url="/requests/")
    ticket = _ticket(link)
    assert _state(desktop) == flow.WAITING
    approved = _approve(ticket, _number_on_screen(desktop))
    assert approved.email == ALICE
    sign_in = SignInRequest.objects.get()
    assert sign_in.approved_at is not None and sign_in.consumed_at is None
    assert _state(desktop) == flow.APPROVED
    assert _signed_in_as(desktop) is None  # approval alone signs nobody in
    assert _claim(desktop) == flow.SignedIn(ALICE, "/requests/")
    assert _signed_in_as(desktop) == ALICE
    row = UserSession.objects.get()
    assert row.method == flow.APPROVAL_METHOD
    tags = list(AuthEvent.objects.order_by("id").values_list("tag", flat=True))
    assert tags[-2:] == [Tag.LINK_APPROVED, Tag.LINK_REDEEMED]
    redeemed = AuthEvent.objects.get(tag=Tag.LINK_REDEEMED)
    assert redeemed.detail["method"] == "email_approval"
    # The sessions page says how this browser got in.
    assert b"Email link, approved on another device" in desktop.get("/signin/sessions/").content


def test_an_approval_can_only_be_used_by_the_browser_that_asked(alice, smtp) -> None:
    desktop, link = _asked(smtp)
    _approve(_ticket(link), _number_on_screen(desktop))
    # A browser with a copy of the asking session but not its binding cookie.
    copy = Client()
    copy.cookies[settings.SESSION_COOKIE_NAME] = desktop.cookies[
        settings.SESSION_COOKIE_NAME].value
    with pytest.raises(NotApproved):
        flow.claim_approval(request_as(copy, method="post"))
    # A browser with the binding cookie but not the session that asked.
    binding_only = Client()
    binding_only.cookies[settings.SIGNIN_BINDING_COOKIE] = desktop.cookies[
        settings.SIGNIN_BINDING_COOKIE].value
    with pytest.raises(NotApproved):
        flow.claim_approval(request_as(binding_only, method="post"))
    assert AuthEvent.objects.filter(tag=Tag.LINK_APPROVAL_FAILED,
                                    reason="not_requesting_browser").count() == 2
    # Nor can any other browser use the link now: the approval reserved it.
    with pytest.raises(LinkAlreadyUsed):
        flow.confirm_link(request_as(Client(), CONFIRM, "post"), _ticket(link))
    assert SignInRequest.objects.get().consumed_at is None
    _claim(desktop)
    assert _signed_in_as(desktop) == ALICE
    assert _signed_in_as(copy) is None and _signed_in_as(binding_only) is None


def test_continue_before_any_approval_is_refused(alice, smtp) -> None:
    desktop, _link = _asked(smtp)
    with pytest.raises(NotApproved):
        _claim(desktop)
    # The no-JavaScript button says so on the page, and nothing was used up.
    response = desktop.post("/signin/check-inbox/continue/")
    assert response.status_code == 409
    assert problems.NOT_APPROVED.title.encode() in response.content
    assert b'data-auto-continue="false"' in response.content
    assert SignInRequest.objects.get().consumed_at is None


def test_three_wrong_numbers_kill_the_request(alice, smtp) -> None:
    desktop, link = _asked(smtp)
    ticket = _ticket(link)
    right = _number_on_screen(desktop)
    wrong = _other(right)
    lefts = []
    for _ in range(flow.MAX_APPROVAL_ATTEMPTS - 1):
        with pytest.raises(NumberWrong) as refused:
            _approve(ticket, wrong)
        lefts.append(refused.value.attempts_left)
    assert lefts == [2, 1]
    with pytest.raises(ApprovalLocked):
        _approve(ticket, wrong)
    sign_in = SignInRequest.objects.get()
    assert sign_in.refused_at is not None
    assert sign_in.refusal == SignInRequest.Refusal.WRONG_NUMBERS
    killed = AuthEvent.objects.get(tag=Tag.LINK_REFUSED)
    assert (killed.reason, killed.outcome) == ("wrong_numbers", AuthEvent.Outcome.FAILURE)
    assert _state(desktop) == "approval_locked"
    # Dead for every way in: the right number, the code, the link itself.
    with pytest.raises(ApprovalLocked):
        _approve(ticket, right)
    with pytest.raises(ApprovalLocked):
        flow.redeem_code(request_as(desktop, method="post"), code_of(link))
    with pytest.raises(ApprovalLocked):
        flow.open_link(request_as(desktop, link.path), link.token)
    assert _signed_in_as(desktop) is None
    assert SignInRequest.objects.get().approval_attempts == flow.MAX_APPROVAL_ATTEMPTS


def test_the_third_try_may_still_be_the_right_number(alice, smtp) -> None:
    desktop, link = _asked(smtp)
    ticket = _ticket(link)
    right = _number_on_screen(desktop)
    for _ in range(flow.MAX_APPROVAL_ATTEMPTS - 1):
        with pytest.raises(NumberWrong):
            _approve(ticket, _other(right))
    _approve(ticket, right)
    _claim(desktop)
    assert _signed_in_as(desktop) == ALICE


def test_a_spent_budget_refuses_even_the_right_number(alice, smtp) -> None:
    # Three tries counted by guesses still on their way (none has stopped the request yet).
    desktop, link = _asked(smtp)
    number = _number_on_screen(desktop)
    SignInRequest.objects.update(approval_attempts=flow.MAX_APPROVAL_ATTEMPTS)
    with pytest.raises(ApprovalLocked):
        _approve(_ticket(link), number)
    assert SignInRequest.objects.get().approved_at is None


@pytest.mark.parametrize("typed", ["", "abc", "123", "4-2", "٤٢", "x" * 500, "4\x002"])
def test_text_that_is_not_a_number_costs_no_try(typed: str, alice, smtp) -> None:
    _desktop, link = _asked(smtp)
    ticket = _ticket(link)
    with pytest.raises(NumberMalformed):
        _approve(ticket, typed)
    assert SignInRequest.objects.get().approval_attempts == 0


def test_wrong_number_page_keeps_the_choices_and_says_the_tries_left(alice, smtp) -> None:
    desktop, link = _asked(smtp)
    phone = Client()
    phone.get(link.path)
    response = phone.post("/signin/confirm/approve/",
                          {"number": _other(_number_on_screen(desktop))})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'aria-invalid="true"' in page
    assert "That number does not match" in page and "You have 2 tries left." in page
    assert "Sign in on this device" in page and "This wasn't me" in page
    assert phone.post("/signin/confirm/approve/", {"number": "4x"}).status_code == 400
    assert SignInRequest.objects.get().approval_attempts == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_wrong_numbers_never_get_a_fourth_try(on_postgres, alice, smtp) -> None:
    desktop, link = _asked(smtp)
    wrong = _other(_number_on_screen(desktop))
    tickets = [_ticket(link) for _ in range(6)]
    barrier = threading.Barrier(len(tickets))
    outcomes: list[str] = []

    def guess(ticket: str) -> None:
        barrier.wait(timeout=10)
        try:
            _approve(ticket, wrong)
        except NumberWrong:
            outcomes.append("wrong")
        except ApprovalLocked:
            outcomes.append("locked")
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(ticket,)) for ticket in tickets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(outcomes) == len(tickets)
    assert SignInRequest.objects.get().approval_attempts == flow.MAX_APPROVAL_ATTEMPTS
    assert outcomes.count("wrong") == flow.MAX_APPROVAL_ATTEMPTS - 1


# --- One state machine with link and code -----------------------------------------------

def test_approval_expires_with_the_link(alice, smtp, settings) -> None:
    settings.MAGIC_LINK_TTL_SECONDS = 900
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        desktop, link = _asked(smtp)
        number = _number_on_screen(desktop)
        ticket = _ticket(link)
        clock.move_to(start + timedelta(minutes=15))
        with pytest.raises(LinkExpired):
            _approve(ticket, number)
        assert _state(desktop) == "expired"
        # Approved in time, continued too late: expired as well.
        clock.move_to(start + timedelta(minutes=20))
        smtp.clear()
        desktop, link = _asked(smtp)
        _approve(_ticket(link), _number_on_screen(desktop))
        clock.move_to(start + timedelta(minutes=35))
        with pytest.raises(LinkExpired):
            _claim(desktop)
        assert _signed_in_as(desktop) is None


def test_a_used_link_cannot_be_approved_and_an_approved_one_not_used_elsewhere(
        alice, smtp) -> None:
    # The phone signs itself in: the desktop's number approves nothing any more.
    desktop, link = _asked(smtp)
    ticket = _ticket(link)
    number = _number_on_screen(desktop)
    flow.confirm_link(request_as(Client(), CONFIRM, "post"), ticket)
    with pytest.raises(LinkAlreadyUsed):
        _approve(ticket, number)
    assert _state(desktop) == "used"
    # The desktop signs in with the code: approving afterwards is refused.
    smtp.clear()
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=False):
        desktop, link = _asked(smtp)
        ticket = _ticket(link)
        number = _number_on_screen(desktop)
        flow.redeem_code(request_as(desktop, method="post"), code_of(link))
        with pytest.raises(LinkAlreadyUsed):
            _approve(ticket, number)
    # Approved once: a second approval and "Sign in on this device" are refused, and once
    # the desktop continued, the link is used for everyone.
    smtp.clear()
    with time_machine.travel(timezone.now() + timedelta(minutes=4), tick=False):
        desktop, link = _asked(smtp)
        ticket = _ticket(link)
        number = _number_on_screen(desktop)
        _approve(ticket, number)
        with pytest.raises(LinkAlreadyUsed):
            _approve(ticket, number)
        with pytest.raises(LinkAlreadyUsed):
            flow.confirm_link(request_as(Client(), CONFIRM, "post"), ticket)
        _claim(desktop)
        with pytest.raises(LinkAlreadyUsed):
            flow.open_link(request_as(Client(), link.path), link.token)
        with pytest.raises(NotApproved):  # signed in: its session waits for nothing now
            _claim(desktop)


@pytest.mark.parametrize("meanwhile", ["approved", "refused"])
def test_a_confirm_on_its_way_loses_to_an_approval_or_a_refusal(meanwhile, alice, smtp) -> None:
    """The phone read the request (its page is up), then the request changed under it."""
    desktop, link = _asked(smtp)
    number = _number_on_screen(desktop)
    ticket = _ticket(link)
    seen = flow.opened_request(request_as(Client(), CONFIRM), ticket)  # still usable here
    if meanwhile == "approved":
        _approve(_ticket(link), number)
    else:
        flow.refuse(request_as(Client(), CONFIRM, "post"), _ticket(link))
    # The consuming UPDATE itself must refuse: the page's earlier read is stale.
    phone = request_as(Client(), CONFIRM, "post")
    with pytest.raises(LinkAlreadyUsed if meanwhile == "approved" else LinkRefused):
        flow._redeem(phone, seen, method="email", asker=False)
    assert SignInRequest.objects.get().consumed_at is None


def test_a_new_request_or_a_sign_in_kills_the_approval(alice, smtp) -> None:
    desktop, link = _asked(smtp)
    _approve(_ticket(link), _number_on_screen(desktop))
    later = timezone.now() + timedelta(minutes=2)
    with time_machine.travel(later, tick=False):
        smtp.clear()
        ask(desktop, ALICE)  # "Send another link": the approved request is replaced
        first = SignInRequest.objects.order_by("id").first()
        assert first is not None and first.superseded_at is not None
        with pytest.raises(NotApproved):  # the new request is waiting, not approved
            _claim(desktop)
        (fresh,) = deliver_and_read(smtp)
    # Approved, then the person signs in some other way (here: Google on another browser).
    with time_machine.travel(later + timedelta(minutes=1), tick=False):
        _approve(_ticket(fresh), _number_on_screen(desktop))
        elsewhere = request_as(Client())
        finish_sign_in(elsewhere, alice, "google", event=Tag.OIDC_SUCCEEDED)
        with pytest.raises(LinkRevoked):
            _claim(desktop)
        assert _state(desktop) == "revoked"
        assert _signed_in_as(desktop) is None


# --- "This wasn't me" -------------------------------------------------------------------

def test_this_wasnt_me_kills_the_request_and_tells_the_waiting_tab(alice, smtp) -> None:
    desktop, link = _asked(smtp)
    number = _number_on_screen(desktop)
    earlier = _ticket(link)  # another device that had opened the link before
    phone = Client()
    phone.get(link.path)
    page = phone.post("/signin/confirm/refuse/")
    assert page.status_code == 200
    assert b"Sign-in stopped" in page.content
    sign_in = SignInRequest.objects.get()
    assert sign_in.refused_at is not None and sign_in.refusal == SignInRequest.Refusal.NOT_ME
    event = AuthEvent.objects.get(tag=Tag.LINK_REFUSED)
    assert (event.reason, event.email, event.user) == ("not_me", ALICE, alice)
    assert event.outcome == AuthEvent.Outcome.FAILURE
    status = desktop.get("/signin/check-inbox/status/").json()
    assert status == {"state": "refused", "message": problems.waiting_words("refused"),
                      "final": True}
    # Neither the number, nor the code, nor the link works any more.
    with pytest.raises(LinkRefused):
        _approve(earlier, number)
    with pytest.raises(LinkRefused):
        flow.redeem_code(request_as(desktop, method="post"), code_of(link))
    reopened = Client().get(link.path, follow=True)
    assert reopened.status_code == 410
    assert problems.LINK_PAGES[LinkRefused].title.encode() in reopened.content
    assert _signed_in_as(desktop) is None and _signed_in_as(phone) is None


# --- Strict mode ------------------------------------------------------------------------

def test_strict_mode_lets_other_devices_approve_or_refuse_never_sign_in(
        alice, northwind, smtp) -> None:
    northwind.strict_same_browser = True
    northwind.save(update_fields=["strict_same_browser"])
    desktop, link = _asked(smtp)
    phone = Client()
    phone.get(link.path)
    page = phone.get(CONFIRM).content.decode()
    assert ">Sign in on this device</button>" not in page
    assert "Sign in on the device that asked</button>" in page
    assert "This wasn't me</button>" in page
    # A POST of the choice the page does not offer is refused, in words, and stores nothing.
    refused = phone.post(CONFIRM)
    assert refused.status_code == 403
    assert problems.SAME_BROWSER_ONLY.title.encode() in refused.content
    with pytest.raises(SameBrowserOnly):
        flow.confirm_link(request_as(Client(), CONFIRM, "post"), _ticket(link))
    assert AuthEvent.objects.filter(tag=Tag.LINK_SAME_BROWSER_ONLY).count() == 2
    assert SignInRequest.objects.get().consumed_at is None
    assert _signed_in_as(phone) is None
    # The number-matched approval still works, and signs in the browser that asked.
    approved = phone.post("/signin/confirm/approve/", {"number": _number_on_screen(desktop)})
    assert approved.status_code == 200
    assert desktop.post("/signin/check-inbox/continue/").status_code == 302
    assert _signed_in_as(desktop) == ALICE
    assert _signed_in_as(phone) is None


def test_strict_mode_keeps_one_click_and_the_code_in_the_asking_browser(
        alice, northwind, smtp) -> None:
    northwind.strict_same_browser = True
    northwind.save(update_fields=["strict_same_browser"])
    desktop, link = _asked(smtp)
    assert desktop.get(link.path).status_code == 302
    assert _signed_in_as(desktop) == ALICE
    desktop.post("/signin/signout/")
    smtp.clear()
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=False):
        laptop, link = _asked(smtp)
        assert laptop.post("/signin/code/", {"code": code_of(link)}).status_code == 302
        assert _signed_in_as(laptop) == ALICE


def test_strict_mode_is_in_the_organization_admins_sign_in_policy(northwind) -> None:
    # The admin opens for staff signed in with a passkey.
    staff = passkey_client(make_user("sam@cloudsentry.com", staff=True, superuser=True))
    page = staff.get(f"/admin/accounts/organization/{northwind.pk}/change/").content.decode()
    policy = page[page.index("Sign-in policy"):].split("</fieldset>")[0]
    assert 'name="strict_same_browser"' in policy
    assert "email links sign in only the browser that asked" in policy.lower()


# --- The waiting tab's status -----------------------------------------------------------

def test_status_is_no_store_bound_to_the_session_and_reads_one_row(alice, smtp) -> None:
    desktop, link = _asked(smtp)
    desktop.get("/signin/check-inbox/")  # the session exists; the poll changes nothing
    with CaptureQueriesContext(connection) as queries:
        response = desktop.get("/signin/check-inbox/status/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    assert response.json() == {"state": "waiting", "message": problems.waiting_words("waiting"),
                               "final": False}
    # One query for the request, and the session read every page makes (served by Redis
    # when there is one, decision 0020): nothing written.
    tables = [q["sql"] for q in queries.captured_queries]
    assert len(tables) == (1 if settings.CONFIG.redis_url else 2), tables
    assert sum("signin_signinrequest" in sql for sql in tables) == 1
    assert all(sql.lstrip().upper().startswith("SELECT") for sql in tables)
    # Another browser, even one with the link, learns nothing.
    stranger = Client()
    stranger.get(link.path)
    other = stranger.get("/signin/check-inbox/status/")
    assert other.status_code == 200
    assert other.json() == {"state": "none", "message": problems.NOT_WAITING, "final": True}


def test_waiting_page_shows_the_state_in_a_live_region_and_keeps_the_code(alice, smtp) -> None:
    desktop, link = _asked(smtp)
    page = desktop.get("/signin/check-inbox/").content.decode()
    assert re.search(r'id="approval-state" role="status">Waiting for the link', page)
    assert '<label for="id_code">' in page
    assert "I've approved it, continue</button>" in page
    phone = Client()
    phone.get(link.path)
    phone.post("/signin/confirm/refuse/")
    page = desktop.get("/signin/check-inbox/").content.decode()
    assert re.search(r'id="approval-state" role="status">Stopped: someone pressed', page)
    assert 'id="approval-number"' not in page and '<label for="id_code">' not in page
