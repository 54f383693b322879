"""The short one-time code in the sign-in email (rule 11, first half; rule 3 for its storage)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from portal.audit.models import AuthEvent
from portal.signin import tokens
from portal.signin.errors import CodeLocked, CodeWrong
from portal.signin.flows import magic_link as flow
from portal.signin.models import SignInRequest
from portal.signin.views.problems import WRONG_CODE, code_message
from tests.signin.magic import ask, code_of, deliver_and_read, html_of, request_as, text_of

pytestmark = pytest.mark.django_db
ALICE = "alice@northwind.example"
CODE_LOCKED = code_message(CodeLocked())


def enter(client: Client, code: str):
    return client.post("/signin/code/", {"code": code})


def _signed_in_as(client: Client) -> str | None:
    response = client.get("/")
    return None if response.status_code == 302 else response.wsgi_request.user.email


def _error_of(response) -> str:
    # Next to the code field, or in place of it once the code is dead.
    match = re.search(r'id="code-(?:error|locked)">(?:\s*<p>)?([^<]*)</p>',
                      response.content.decode())
    assert match, "no error next to the code field"
    return match.group(1)


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_email_carries_a_six_digit_code_in_both_parts(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    code = code_of(link)
    assert len(code) == 6
    html = html_of(link.email)
    assert "Or enter this code in the browser where you asked:" in html
    assert f"{code[:3]} {code[3:]}" in html
    assert "only in the browser where you asked" in text_of(link.email)


def test_check_inbox_page_has_an_accessible_code_form(alice) -> None:
    browser = Client()
    ask(browser, ALICE)
    page = browser.get("/signin/check-inbox/").content.decode()
    assert '<label for="id_code">Enter the 6-digit code from the email</label>' in page
    assert 'action="/signin/code/"' in page
    for attribute in ('inputmode="numeric"', 'autocomplete="one-time-code"', "pattern="):
        assert attribute in page


def test_right_code_in_the_asking_browser_signs_in_and_lands_on_next(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE, next_url="/requests/?status=open")
    (link,) = deliver_and_read(smtp)
    response = enter(browser, code_of(link))
    assert response.status_code == 302
    assert response["Location"] == "/requests/?status=open"
    assert _signed_in_as(browser) == ALICE
    redeemed = AuthEvent.objects.get(tag="signin:link:redeemed")
    assert redeemed.detail["method"] == "email_code"
    assert SignInRequest.objects.get().consumed_at is not None


def test_code_with_a_space_is_accepted(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    code = code_of(link)
    assert enter(browser, f" {code[:3]} {code[3:]} ").status_code == 302
    assert _signed_in_as(browser) == ALICE


@pytest.mark.parametrize("typed", ["", "abc", "12345", "1234567", "١٢٣٤٥٦", "12-34-56",
                                   "x" * 5000, "123\x00456", "<script>"])
def test_text_that_is_not_a_code_gets_a_plain_message_and_costs_no_try(
        typed: str, alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    deliver_and_read(smtp)
    response = enter(browser, typed)
    assert response.status_code == 400
    assert "Enter the 6 digits from the email" in _error_of(response)
    assert SignInRequest.objects.get().code_attempts == 0


def test_wrong_code_shows_the_error_and_the_tries_left(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    response = enter(browser, _wrong(code_of(link)))
    assert response.status_code == 400
    assert _error_of(response) == f"{WRONG_CODE} You have 4 tries left."
    assert 'aria-invalid="true"' in response.content.decode()
    assert _signed_in_as(browser) is None
    failed = AuthEvent.objects.get(tag="signin:link:code_failed")
    assert failed.outcome == AuthEvent.Outcome.FAILURE
    assert failed.reason == "wrong_code"


def test_code_does_not_work_in_another_browser(alice, smtp) -> None:
    asking = Client()
    ask(asking, ALICE)
    (link,) = deliver_and_read(smtp)
    # The other browser even carries a copy of the asking browser's pending entry; what it
    # lacks is the binding cookie.
    other = Client()
    session = other.session
    session[flow.PENDING_KEY] = asking.session[flow.PENDING_KEY]
    session.save()
    response = enter(other, code_of(link))
    assert response.status_code == 400
    assert _error_of(response) == WRONG_CODE
    assert _signed_in_as(other) is None
    # It spent none of the asker's tries, and the code still works where it was asked for.
    assert SignInRequest.objects.get().code_attempts == 0
    assert enter(asking, code_of(link)).status_code == 302


def test_code_without_a_pending_request_goes_to_the_sign_in_page(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    response = enter(Client(), code_of(link))
    assert response.status_code == 302
    assert response["Location"] == "/signin/"


def test_flow_refuses_the_right_code_without_the_binding(alice, smtp) -> None:
    asking = Client()
    ask(asking, ALICE)
    (link,) = deliver_and_read(smtp)
    asking.cookies.pop("portal_signin_binding")
    with pytest.raises(CodeWrong) as refused:
        flow.redeem_code(request_as(asking, method="post"), code_of(link))
    assert refused.value.attempts_left is None


def test_five_wrong_codes_kill_the_code_even_for_the_right_one(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    code = code_of(link)
    errors = [_error_of(enter(browser, _wrong(code))) for _ in range(5)]
    assert errors[0].endswith("You have 4 tries left.")
    assert errors[3].endswith("You have 1 try left.")
    assert errors[4] == CODE_LOCKED
    response = enter(browser, code)
    assert response.status_code == 400
    assert _error_of(response) == CODE_LOCKED
    assert _signed_in_as(browser) is None
    assert SignInRequest.objects.get().code_attempts == flow.MAX_CODE_ATTEMPTS
    # The link in the email still works: only the code is dead.
    assert browser.get(link.path).status_code == 302
    assert _signed_in_as(browser) == ALICE


def test_code_after_the_link_was_used_is_refused(alice, smtp) -> None:
    waiting_tab, phone = Client(), Client()
    ask(waiting_tab, ALICE)
    (link,) = deliver_and_read(smtp)
    opened = phone.get(link.path)
    phone.post(opened["Location"])  # "Sign in on this device" on the phone
    assert _signed_in_as(phone) == ALICE
    response = enter(waiting_tab, code_of(link))
    assert response.status_code == 302
    assert response["Location"] == "/signin/link-problem/"
    problem = waiting_tab.get(response["Location"])
    assert problem.status_code == 410
    assert b"already been used" in problem.content
    assert _signed_in_as(waiting_tab) is None


def test_link_after_the_code_was_used_says_already_used(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    assert enter(browser, code_of(link)).status_code == 302
    again = Client().get(link.path, follow=True)
    assert again.status_code == 410
    assert b"This link has already been used" in again.content


def test_code_expires_with_the_link(alice, smtp, settings) -> None:
    settings.MAGIC_LINK_TTL_SECONDS = 900
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        browser = Client()
        ask(browser, ALICE)
        (link,) = deliver_and_read(smtp)
        clock.move_to(start + timedelta(minutes=15))
        response = enter(browser, code_of(link))
        assert response.status_code == 302
        expired = browser.get(response["Location"])
        assert expired.status_code == 410
        assert b"This link has expired" in expired.content
        assert _signed_in_as(browser) is None


def test_code_works_until_the_last_second(alice, smtp, settings) -> None:
    settings.MAGIC_LINK_TTL_SECONDS = 900
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        browser = Client()
        ask(browser, ALICE)
        (link,) = deliver_and_read(smtp)
        clock.move_to(start + timedelta(minutes=14, seconds=59))
        assert enter(browser, code_of(link)).status_code == 302
        assert _signed_in_as(browser) == ALICE


def test_only_an_hmac_of_the_code_is_stored(alice, smtp) -> None:
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    code = code_of(link)
    sign_in = SignInRequest.objects.get()
    plain_hashes = {hashlib.sha256(text.encode()).hexdigest()
                    for text in (code, f"{sign_in.pk}:{code}", f"{code[:3]} {code[3:]}")}
    assert sign_in.code_hmac == tokens.hmac_code(sign_in.pk, code)
    assert sign_in.code_hmac not in plain_hashes
    # Neither the code (alone or grouped) nor a plain hash of it is in any table, the
    # outbox and the audit trail included.
    as_stored = re.compile(rf"(?<![0-9]){code[:3]} ?{code[3:]}(?![0-9])")
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608
            rows = repr(cursor.fetchall())
            assert not as_stored.search(rows), table
            for digest in plain_hashes:
                assert digest not in rows, table


def test_hmac_depends_on_the_server_secret_and_the_request(settings) -> None:
    first = tokens.hmac_code(1, "123456")
    assert tokens.hmac_code(2, "123456") != first
    settings.SECRET_KEY = "another-secret-" + "x" * 50
    assert tokens.hmac_code(1, "123456") != first


def test_codes_are_six_zero_padded_digits() -> None:
    codes = {tokens.generate_code() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9]{6}", code) for code in codes)
    assert len(codes) > 150
    assert tokens.clean_code("004 217") == "004217"
    assert tokens.clean_code("١٢٣٤٥٦") is None


def test_unknown_address_answers_any_code_as_a_wrong_one(alice, smtp) -> None:
    known, unknown = Client(), Client()
    ask(known, ALICE)
    ask(unknown, "nobody@northwind.example")
    (link,) = deliver_and_read(smtp)  # only Alice gets an email
    wrong = _wrong(code_of(link))
    for attempt in range(6):
        from_known, from_unknown = enter(known, wrong), enter(unknown, wrong)
        assert from_unknown.status_code == from_known.status_code == 400
        assert _error_of(from_unknown) == _error_of(from_known), attempt
    assert _error_of(from_unknown) == CODE_LOCKED
    unknown_request = SignInRequest.objects.get(email="nobody@northwind.example")
    assert unknown_request.code_hmac == ""


def test_code_before_the_email_left_answers_as_a_wrong_one(alice) -> None:
    browser = Client()
    ask(browser, ALICE)
    with pytest.raises(CodeWrong) as refused:
        flow.redeem_code(request_as(browser, method="post"), "123456")
    assert refused.value.attempts_left == 4
    response = enter(browser, "123456")
    assert response.status_code == 400
    assert _error_of(response) == f"{WRONG_CODE} You have 3 tries left."


def test_fifth_try_may_still_be_the_right_one(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    for _ in range(flow.MAX_CODE_ATTEMPTS - 1):
        enter(browser, _wrong(code_of(link)))
    assert enter(browser, code_of(link)).status_code == 302
    assert _signed_in_as(browser) == ALICE


def test_flow_counts_tries_and_locks(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (link,) = deliver_and_read(smtp)
    wrong = _wrong(code_of(link))
    for left in (4, 3, 2, 1):
        with pytest.raises(CodeWrong) as refused:
            flow.redeem_code(request_as(browser, method="post"), wrong)
        assert refused.value.attempts_left == left
    with pytest.raises(CodeLocked):  # the fifth wrong try is the last
        flow.redeem_code(request_as(browser, method="post"), wrong)
    with pytest.raises(CodeLocked):
        flow.redeem_code(request_as(browser, method="post"), code_of(link))
    assert AuthEvent.objects.filter(tag="signin:link:code_failed").count() == 6


def test_code_tries_are_rate_limited_per_ip_across_sessions(alice, smtp) -> None:
    browsers = [Client() for _ in range(5)]
    for browser in browsers:
        ask(browser, f"guess{browsers.index(browser)}@northwind.example")
    limit = int(settings.SIGNIN_RATE_LIMITS["code_ip"].split("/")[0])
    statuses = [enter(browsers[n % 5], "123456").status_code for n in range(limit)]
    assert 429 not in statuses
    limited = enter(browsers[0], "123456")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert "several codes tried from your network" in _error_of(limited)
    # Even the right code of a fresh request is not checked from that IP for now.
    fresh = Client()
    ask(fresh, ALICE)
    (link,) = deliver_and_read(smtp)
    assert enter(fresh, code_of(link)).status_code == 429
    assert _signed_in_as(fresh) is None


def test_a_new_email_makes_the_earlier_code_stop_working(alice, smtp) -> None:
    browser = Client()
    ask(browser, ALICE)
    (first,) = deliver_and_read(smtp)
    smtp.clear()
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=False):
        ask(browser, ALICE)  # past the resend cooldown
        (second,) = deliver_and_read(smtp)
        if code_of(first) != code_of(second):
            response = enter(browser, code_of(first))
            assert response.status_code == 400
        assert enter(browser, code_of(second)).status_code == 302
    assert _signed_in_as(browser) == ALICE
