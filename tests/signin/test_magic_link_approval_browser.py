"""Signing in from any device, in Chromium: a desktop asks, a phone opens the email.

Two browser contexts share nothing but the live server: the desktop (1000x760) asks for a
link and shows its number; the phone (390x844, touch) opens the link from the email that
the worker delivered over real SMTP. Nothing reloads the desktop tab: whatever it shows
and does after the phone acts, it does by itself (its status poll). Screenshots land in
test-results/<test>/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.accounts.models import Organization
from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.signin.models import SignInRequest, UserSession
from portal.signin.views import problems
from tests.browser.conftest import PHONE
from tests.factories import make_org, make_user
from tests.signin.magic import Link, code_of, deliver_and_read
from tests.support import screenshots
from tests.support.smtp import SMTPServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ALICE = "alice@northwind.example"
NUMBER_LABEL = "Type the number shown on the other screen"


@pytest.fixture
def portal(live_server: Any, smtp: SMTPServer, settings: Any) -> str:
    settings.PORTAL_BASE_URL = live_server.url
    make_user(ALICE, make_org(), full_name="Alice Moreno")
    return str(live_server.url)


@pytest.fixture
def contexts(browser: Any) -> Iterator[Any]:
    """Open contexts: ``contexts(**options)``; all closed at the end of the test."""
    opened: list[Any] = []

    def make(**options: Any) -> Any:
        options = {"viewport": {"width": 1000, "height": 760}, **options}
        context = browser.new_context(**options)
        context.set_default_timeout(30_000)  # polls every 2 s; bounded for a loaded machine
        opened.append(context)
        return context

    yield make
    for context in opened:
        context.close()


# The desktop signs itself in on its next poll (every 2 s) and loads the requests page. The
# bound is generous because `make test` runs two passes, two Chromiums, on two cores.
SIGNED_IN_WITHIN = 60_000


def desktop_asks(contexts: Any, portal: str, smtp: SMTPServer, *,
                 javascript: bool = True) -> tuple[Any, Link]:
    """The desktop goes to its requests, is sent to sign in, and asks for a link."""
    page = contexts(java_script_enabled=javascript).new_page()
    page.goto(f"{portal}/requests/")
    page.get_by_label("Work email address").fill(ALICE)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    (link,) = deliver_and_read(smtp)
    return page, link


def phone_opens(contexts: Any, link: Link) -> Any:
    phone = contexts(**PHONE).new_page()
    phone.goto(link.url)
    phone.get_by_role("heading", name=f"Sign in as {ALICE}?").wait_for()
    return phone


def number_on(desktop: Any) -> str:
    return str(desktop.locator("#approval-number").inner_text()).strip()


def wrong(number: str) -> str:
    return f"{(int(number) + 1) % 100:02d}"


def signed_in(page: Any) -> bool:
    return bool(page.get_by_role("button", name="Sign out").count())


def test_phone_approves_with_the_number_and_the_desktop_signs_itself_in(
        portal: str, smtp: SMTPServer, contexts: Any, artifacts: Path) -> None:
    desktop, link = desktop_asks(contexts, portal, smtp)
    number = number_on(desktop)
    assert desktop.locator("#approval-state").inner_text() == problems.waiting_words("waiting")
    screenshots.take(desktop, path=str(artifacts / "desktop-waiting.png"), full_page=True)

    phone = phone_opens(contexts, link)
    facts = phone.locator("dl.facts").inner_text()
    assert "Chrome on Linux" in facts and "127.0.0.1" in facts  # the desktop, not the phone
    assert phone.locator("#approval-number").count() == 0  # the number is never shown here
    screenshots.take(phone, path=str(artifacts / "phone-confirm.png"), full_page=True)
    phone.get_by_label(NUMBER_LABEL).fill(number)
    phone.get_by_role("button", name="Sign in on the device that asked").tap()
    phone.get_by_role("heading", name="Sign-in approved").wait_for()
    screenshots.take(phone, path=str(artifacts / "phone-approved.png"), full_page=True)

    # No reload, no click: the desktop's poll sees "approved" and continues by itself.
    desktop.wait_for_url(f"{portal}/requests/", timeout=SIGNED_IN_WITHIN)
    assert signed_in(desktop)
    screenshots.take(desktop, path=str(artifacts / "desktop-signed-in.png"), full_page=True)
    assert UserSession.objects.get().method == "email_approval"
    phone.goto(f"{portal}/")
    assert "/signin/" in phone.url  # the phone approved; it is not signed in itself


def test_without_javascript_the_continue_button_signs_the_desktop_in(
        portal: str, smtp: SMTPServer, contexts: Any) -> None:
    desktop, link = desktop_asks(contexts, portal, smtp, javascript=False)
    number = number_on(desktop)
    continue_button = desktop.get_by_role("button", name="I've approved it, continue")
    # Pressed too early: said so, nothing lost.
    continue_button.click()
    desktop.get_by_text(problems.NOT_APPROVED.title).wait_for()
    phone = phone_opens(contexts, link)
    phone.get_by_label(NUMBER_LABEL).fill(number)
    phone.get_by_role("button", name="Sign in on the device that asked").tap()
    phone.get_by_role("heading", name="Sign-in approved").wait_for()
    desktop.goto(f"{portal}/signin/check-inbox/")
    assert desktop.locator("#approval-state").inner_text() == problems.waiting_words("approved")
    desktop.get_by_role("button", name="I've approved it, continue").click()
    desktop.wait_for_url(f"{portal}/requests/", timeout=SIGNED_IN_WITHIN)
    assert signed_in(desktop)


def test_wrong_numbers_past_the_budget_stop_the_request_on_both_screens(
        portal: str, smtp: SMTPServer, contexts: Any, artifacts: Path) -> None:
    desktop, link = desktop_asks(contexts, portal, smtp)
    guess = wrong(number_on(desktop))
    phone = phone_opens(contexts, link)
    for left in ("2 tries", "1 try"):
        phone.get_by_label(NUMBER_LABEL).fill(guess)
        phone.get_by_role("button", name="Sign in on the device that asked").tap()
        phone.get_by_text(f"You have {left} left.").wait_for()
    phone.get_by_label(NUMBER_LABEL).fill(guess)
    phone.get_by_role("button", name="Sign in on the device that asked").tap()
    phone.get_by_role("heading", name="Too many wrong numbers").wait_for()
    screenshots.take(phone, path=str(artifacts / "phone-too-many.png"), full_page=True)

    desktop.locator("#approval-state", has_text="typed wrong").wait_for()
    desktop.locator("#id_code").wait_for(state="hidden")  # no way forward there any more
    screenshots.take(desktop, path=str(artifacts / "desktop-stopped.png"), full_page=True)
    assert not signed_in(desktop)
    assert SignInRequest.objects.get().refusal == SignInRequest.Refusal.WRONG_NUMBERS


def test_this_wasnt_me_on_the_phone_stops_the_desktop(
        portal: str, smtp: SMTPServer, contexts: Any, artifacts: Path) -> None:
    desktop, link = desktop_asks(contexts, portal, smtp)
    phone = phone_opens(contexts, link)
    phone.get_by_role("button", name="This wasn't me").tap()
    phone.get_by_role("heading", name="Sign-in stopped").wait_for()
    desktop.locator("#approval-state", has_text="This wasn't me").wait_for()
    screenshots.take(desktop, path=str(artifacts / "desktop-refused.png"), full_page=True)
    assert not signed_in(desktop)
    assert AuthEvent.objects.filter(tag=Tag.LINK_REFUSED, reason="not_me").count() == 1
    # The link is dead on the phone too.
    phone.goto(link.url)
    phone.get_by_role("heading", name="This sign-in was stopped").wait_for()


def test_strict_mode_refuses_sign_in_on_this_device(
        portal: str, smtp: SMTPServer, contexts: Any, artifacts: Path) -> None:
    Organization.objects.update(strict_same_browser=True)
    desktop, link = desktop_asks(contexts, portal, smtp)
    phone = phone_opens(contexts, link)
    assert phone.get_by_role("button", name="Sign in on this device").count() == 0
    phone.get_by_text("allows email links to sign in only the browser").wait_for()
    # The choice the page leaves out, posted anyway (a saved page, a crafted form).
    with phone.expect_navigation() as refused:
        phone.evaluate("""() => {
          const form = document.createElement('form');
          form.method = 'post';
          form.action = '/signin/confirm/';
          form.appendChild(document.querySelector('input[name=csrfmiddlewaretoken]').cloneNode());
          document.body.appendChild(form);
          form.submit();
        }""")
    assert refused.value.status == 403
    phone.get_by_text(problems.SAME_BROWSER_ONLY.title).wait_for()
    screenshots.take(phone, path=str(artifacts / "phone-strict-refused.png"), full_page=True)
    phone.goto(f"{portal}/")
    assert "/signin/" in phone.url
    # The phone can still approve the desktop.
    phone.goto(f"{portal}/signin/confirm/")
    phone.get_by_label(NUMBER_LABEL).fill(number_on(desktop))
    phone.get_by_role("button", name="Sign in on the device that asked").tap()
    phone.get_by_role("heading", name="Sign-in approved").wait_for()
    desktop.wait_for_url(f"{portal}/requests/", timeout=SIGNED_IN_WITHIN)
    assert signed_in(desktop)


def test_the_code_typed_into_the_desktop_tab_signs_it_in(
        portal: str, smtp: SMTPServer, contexts: Any) -> None:
    desktop, link = desktop_asks(contexts, portal, smtp)
    phone_opens(contexts, link)  # opened on the phone, but the desktop is where work is
    desktop.get_by_label("Enter the 6-digit code from the email").fill(code_of(link))
    desktop.get_by_role("button", name="Sign in with the code").click()
    desktop.wait_for_url(f"{portal}/requests/", timeout=SIGNED_IN_WITHIN)
    assert signed_in(desktop)
    assert UserSession.objects.get().method == "email_code"
