"""Every page a person sees meets WCAG 2.1 A/AA, works by keyboard and without JavaScript.

Each page is checked with axe-core (WCAG 2.0/2.1 A and AA rules) and for reflow at 320px;
the keyboard test adds what axe cannot see: tab order, a visible focus ring with 3:1
contrast, and a skip link that works.

The pages are reached the way people reach them: links are asked for on the sign-in form,
delivered by the worker over real SMTP and opened in Chromium. Screenshots of each audited
page land in test-results/<test>/.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from portal.accounts.models import User
from portal.core.clock import now
from portal.devtools import catcher
from portal.helpcenter.articles import all_articles
from portal.mail.compose import compose
from portal.mail.outbox import new_message_id
from portal.servicedesk import services
from portal.servicedesk.models import ServiceRequest
from portal.signin.models import SignInRequest
from portal.signin.views import problems
from tests.browser.conftest import ALICE, BOB, FAKE_PROVIDERS, PHONE, Auditor, NewContext, sign_in
from tests.factories import make_org, make_user
from tests.signin.magic import ask, code_of, deliver_and_read, html_of
from tests.support import screenshots
from tests.support.smtp import SMTPServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

def test_sign_in_and_link_pages_have_no_accessibility_violations(
        portal: str, smtp: SMTPServer, settings: Any, new_context: NewContext,
        auditor: Auditor) -> None:
    settings.OIDC_PROVIDERS = FAKE_PROVIDERS
    page = new_context().new_page()

    page.goto(f"{portal}/signin/")
    auditor.check(page, "signin")
    page.get_by_label("Work email address").fill("not an address")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.locator(".field-error").wait_for()
    auditor.check(page, "signin-error")

    page.get_by_label("Work email address").fill(ALICE)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    auditor.check(page, "check-inbox")
    # axe skips disabled controls, but people still need to read what the button will do.
    resend = page.get_by_role("button", name="Send another link")
    assert resend.is_disabled()
    label_contrast = resend.evaluate("b => window.__contrast(getComputedStyle(b).color, b)")
    assert label_contrast >= 4.5, f"'Send another link' while waiting: {label_contrast:.2f}:1"
    (link,) = deliver_and_read(smtp)
    # A wrong code (each digit of the real one plus one): the form's error state.
    real = code_of(link)
    wrong = "".join(str((int(digit) + 1) % 10) for digit in real)
    page.get_by_label("Enter the 6-digit code from the email").fill(wrong)
    page.get_by_role("button", name="Sign in with the code").click()
    page.locator("#code-error").wait_for()
    auditor.check(page, "check-inbox-code-error")
    # The email itself, as a mail client that renders HTML shows it.
    email_page = new_context().new_page()
    email_page.set_content(html_of(link.email))
    auditor.check(email_page, "email-sign-in-link")

    # Opened in another browser: the confirmation page, then signed in there.
    other = new_context().new_page()
    other.goto(link.url)
    other.get_by_role("heading", name=f"Sign in as {ALICE}?").wait_for()
    auditor.check(other, "confirm")
    other.get_by_role("button", name="Sign in on this device").click()
    other.get_by_role("button", name="Sign out").wait_for()

    # The same link again, in the browser that asked: used (email prefilled).
    page.goto(link.url)
    page.get_by_role("heading", name="This link has already been used").wait_for()
    auditor.check(page, "link-used")

    smtp.clear()
    ask(Client(), BOB)
    (old,) = deliver_and_read(smtp)
    SignInRequest.objects.filter(email=BOB).update(expires_at=now() - timedelta(minutes=1))
    page.goto(old.url)
    page.get_by_role("heading", name="This link has expired").wait_for()
    auditor.check(page, "link-expired")

    page.goto(f"{portal}/signin/link/{secrets.token_urlsafe(32)}/")
    page.get_by_role("heading", name="This link is not valid").wait_for()
    auditor.check(page, "link-unknown")

    # Rate limited: the address's allowance used up elsewhere, then asked once more here.
    allowed = int(settings.SIGNIN_RATE_LIMITS["address"].split("/")[0])
    for _ in range(allowed):
        ask(Client(), "carol@northwind.example")
    limited = new_context().new_page()
    limited.goto(f"{portal}/signin/")
    limited.get_by_label("Work email address").fill("carol@northwind.example")
    limited.get_by_role("button", name="Email me a sign-in link").click()
    limited.get_by_role("heading", name=re.compile(r"^Please wait \d+ minutes?$")).wait_for()
    auditor.check(limited, "rate-limited")

    page.goto(f"{portal}/help/")
    auditor.check(page, "help-index")
    for article in all_articles():
        page.goto(f"{portal}/help/{article.slug}/")
        page.get_by_role("heading", name=article.title, exact=True).wait_for()
        auditor.check(page, f"help-{article.slug}")

    # Cookies blocked or expired between loading the form and sending it: the CSRF page.
    page.goto(f"{portal}/signin/")
    page.context.clear_cookies()
    page.get_by_label("Work email address").fill(ALICE)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("heading", name="Please try that again").wait_for()
    auditor.check(page, "csrf-failure")

    response = page.goto(f"{portal}/no-such-page/")
    assert response.status == 404
    auditor.check(page, "not-found")
    auditor.assert_clean()


SIZES: dict[str, dict[str, Any]] = {"desktop": {}, "phone": PHONE}
NUMBER_LABEL = "Type the number shown on the other screen"


@pytest.mark.parametrize("size", list(SIZES))
def test_any_device_pages_have_no_accessibility_violations(
        size: str, portal: str, smtp: SMTPServer, new_context: NewContext,
        auditor: Auditor) -> None:
    """Every page of signing in from another device, with both screens at ``size``."""
    options = SIZES[size]
    org = User.objects.get(email=ALICE).organization
    for name in ("dave", "erin"):
        make_user(f"{name}@northwind.example", org)
    strict = make_org("Contoso Freight", ["contoso.example"])
    strict.strict_same_browser = True
    strict.save(update_fields=["strict_same_browser"])
    make_user("frank@contoso.example", strict)

    def asks(email: str, script: bool = True) -> tuple[Any, Any]:
        context = new_context(**options)
        if not script:
            # The portal's own script blocked: the page as without JavaScript, while axe,
            # injected by the auditor, still runs.
            context.route("**/static/portal/signin.js", lambda route: route.abort())
        page = context.new_page()
        smtp.clear()
        page.goto(f"{portal}/signin/")
        page.get_by_label("Work email address").fill(email)
        page.get_by_role("button", name="Email me a sign-in link").click()
        page.get_by_role("heading", name="Check your inbox").wait_for()
        (link,) = deliver_and_read(smtp)
        return page, link

    def opens(link: Any, email: str) -> Any:
        phone = new_context(**options).new_page()
        phone.goto(link.url)
        phone.get_by_role("heading", name=f"Sign in as {email}?").wait_for()
        return phone

    def approve_with(phone: Any, number: str) -> None:
        phone.get_by_label(NUMBER_LABEL).fill(number)
        phone.get_by_role("button", name="Sign in on the device that asked").click()

    # The waiting tab (without its script, so nothing changes under the auditor), its number,
    # and "I've approved it, continue" pressed before anyone approved.
    waiting, link = asks(ALICE, script=False)
    auditor.check(waiting, f"{size}-check-inbox-waiting")
    number = waiting.locator("#approval-number").inner_text().strip()
    waiting.get_by_role("button", name="I've approved it, continue").click()
    waiting.get_by_text(problems.NOT_APPROVED.title).wait_for()
    auditor.check(waiting, f"{size}-check-inbox-not-approved")
    # The other device: its page, a wrong number, the right one.
    phone = opens(link, ALICE)
    auditor.check(phone, f"{size}-confirm")
    approve_with(phone, f"{(int(number) + 1) % 100:02d}")
    phone.locator("#number-error").wait_for()
    auditor.check(phone, f"{size}-confirm-wrong-number")
    approve_with(phone, number)
    phone.get_by_role("heading", name="Sign-in approved").wait_for()
    auditor.check(phone, f"{size}-approved")
    waiting.goto(f"{portal}/signin/check-inbox/")
    waiting.get_by_text(problems.waiting_words("approved")).wait_for()
    auditor.check(waiting, f"{size}-check-inbox-approved")

    # "This wasn't me": both screens, the waiting one changing by itself.
    asking, link = asks(BOB)
    phone = opens(link, BOB)
    phone.get_by_role("button", name="This wasn't me").click()
    phone.get_by_role("heading", name="Sign-in stopped").wait_for()
    auditor.check(phone, f"{size}-refused")
    asking.locator("#approval-state", has_text="This wasn't me").wait_for()
    auditor.check(asking, f"{size}-check-inbox-refused")
    phone.goto(link.url)
    phone.get_by_role("heading", name="This sign-in was stopped").wait_for()
    auditor.check(phone, f"{size}-link-refused")

    # Three wrong numbers.
    asking, link = asks("dave@northwind.example")
    phone = opens(link, "dave@northwind.example")
    wrong = f"{(int(asking.locator('#approval-number').inner_text()) + 1) % 100:02d}"
    for _ in range(3):
        approve_with(phone, wrong)
        phone.wait_for_load_state("load")
    phone.get_by_role("heading", name="Too many wrong numbers").wait_for()
    auditor.check(phone, f"{size}-link-approval-locked")
    asking.locator("#approval-state", has_text="typed wrong").wait_for()
    auditor.check(asking, f"{size}-check-inbox-approval-locked")

    # Expired while the tab waits.
    asking, link = asks("erin@northwind.example")
    SignInRequest.objects.filter(email="erin@northwind.example").update(
        expires_at=now() - timedelta(seconds=1))
    asking.locator("#approval-state", has_text="expired").wait_for()
    auditor.check(asking, f"{size}-check-inbox-expired")

    # Strict mode: the page without "Sign in on this device", and that choice refused.
    asking, link = asks("frank@contoso.example")
    phone = opens(link, "frank@contoso.example")
    auditor.check(phone, f"{size}-confirm-strict")
    phone.evaluate("""() => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = '/signin/confirm/';
      form.appendChild(document.querySelector('input[name=csrfmiddlewaretoken]').cloneNode());
      document.body.appendChild(form);
      form.submit();
    }""")
    phone.get_by_text(problems.SAME_BROWSER_ONLY.title).wait_for()
    auditor.check(phone, f"{size}-confirm-strict-refused")
    auditor.assert_clean()


def test_signed_in_pages_have_no_accessibility_violations(
        portal: str, smtp: SMTPServer, new_context: NewContext, auditor: Auditor) -> None:
    author = User.objects.get(email=ALICE)
    staff = make_user("sam@cloudsentry.example", staff=True, full_name="Sam Staff")
    statuses = [ServiceRequest.Status.NEW, ServiceRequest.Status.IN_PROGRESS,
                ServiceRequest.Status.WAITING, ServiceRequest.Status.RESOLVED,
                ServiceRequest.Status.CLOSED]
    filed = []
    for index, status in enumerate(statuses):
        sr = services.file_request(author, title=f"Warehouse printer {index + 1} offline",
                                   description="Dock 3 labels print blank.\n\nSince Monday.",
                                   priority=ServiceRequest.Priority.choices[index % 4][0])
        ServiceRequest.objects.filter(pk=sr.pk).update(status=status)
        filed.append(sr)
    services.add_comment(author, filed[0], "Restarted it, no change.")
    services.reply_as_staff(staff, filed[0], "We are sending a technician.")

    page = new_context().new_page()
    sign_in(page, portal, smtp)
    # A second signed-in browser, so the sessions page has a row to sign out.
    second = new_context().new_page()
    sign_in(second, portal, smtp)

    page.goto(f"{portal}/")
    auditor.check(page, "home")
    page.goto(f"{portal}/requests/")
    auditor.check(page, "request-list")
    page.goto(f"{portal}/requests/?status=closed")
    auditor.check(page, "request-list-closed")
    page.goto(f"{portal}{filed[0].get_absolute_url()}")
    auditor.check(page, "request-detail")
    page.goto(f"{portal}{filed[-1].get_absolute_url()}")
    auditor.check(page, "request-detail-closed")

    page.goto(f"{portal}/requests/new/")
    auditor.check(page, "request-new")
    page.get_by_role("button", name="File the request").click()
    page.locator("#form-errors").wait_for()
    auditor.check(page, "request-new-errors")

    page.goto(f"{portal}/signin/sessions/")
    auditor.check(page, "sessions")
    page.locator("table.sessions").get_by_role("button", name="Sign out").first.click()
    page.get_by_text("That session has been signed out.").wait_for()
    auditor.check(page, "sessions-after-ending-one")

    page.get_by_role("link", name="Notifications").click()
    auditor.check(page, "notifications")
    page.get_by_label("Every request of my organization").check()
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved. Your email choices are updated.").wait_for()
    auditor.check(page, "notifications-saved")

    # Staff belong to no organization: the portal home says where their work is.
    staff_page = new_context().new_page()
    sign_in(staff_page, portal, smtp, email=staff.email)
    staff_page.get_by_role("heading", name="You are signed in as Cloud Sentry staff").wait_for()
    auditor.check(staff_page, "home-staff")

    page.goto(f"{portal}/signin/signout/")
    auditor.check(page, "signout")
    page.get_by_role("main").get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="You are signed out.").wait_for()
    auditor.check(page, "signed-out")
    auditor.assert_clean()


def test_dev_mail_pages_have_no_accessibility_violations(
        live_server: Any, settings: Any, tmp_path: Path, new_context: NewContext,
        auditor: Auditor) -> None:
    maildir = tmp_path / "mail"
    settings.DEBUG = True
    settings.PORTAL_DEV_MAIL_DIR = str(maildir)
    link = f"{live_server.url}/signin/link/{'a' * 43}/"
    composed = compose(to=ALICE, subject="Your sign-in link", text=f"Sign in: {link}\n",
                       html=f'<p><a href="{link}">Sign in</a></p>',
                       message_id=new_message_id(), date=now())
    catcher.open_maildir(maildir).add(composed.data)

    page = new_context().new_page()
    page.goto(f"{live_server.url}/dev/mail/")
    auditor.check(page, "dev-mail-inbox")
    page.get_by_role("link", name="Your sign-in link").click()
    page.get_by_role("heading", name="Your sign-in link").wait_for()
    auditor.check(page, "dev-mail-message")
    auditor.assert_clean()


FOCUS_INFO = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {tag: el.tagName.toLowerCase(), id: el.id, text: (el.innerText || '').trim(),
          inNav: !!el.closest('nav[aria-label="Main"]'), skip: el.classList.contains('skip-link'),
          onScreen: el.getBoundingClientRect().left >= 0,
          visible: el.matches(':focus-visible'), outline: style.outlineStyle,
          outlineWidth: style.outlineWidth,
          // The ring is drawn outside the element (outline-offset), over its parent's background.
          ringContrast: window.__contrast(style.outlineColor, el.parentElement)};
}"""


def test_sign_in_page_tab_order_is_skip_link_nav_email_button_with_visible_focus(
        portal: str, settings: Any, new_context: NewContext, artifacts: Path) -> None:
    # Without providers configured; with them, their buttons come between nav and email.
    settings.OIDC_PROVIDERS = {}
    page = new_context().new_page()
    page.goto(f"{portal}/signin/")
    stops = []
    for _ in range(12):  # bounded: the page has far fewer stops before the button
        page.keyboard.press("Tab")
        info = page.evaluate(FOCUS_INFO)
        stops.append(info)
        if info["tag"] == "button" and info["text"] == "Email me a sign-in link":
            break
    screenshots.take(page, path=str(artifacts / "focus-on-button.png"))
    trail = [f"{s['tag']}#{s['id']} {s['text']!r}" for s in stops]
    assert [s["text"] for s in stops] == [
        "Skip to content", settings.PORTAL_BRAND, "Help", "Sign in", "",
        "Email me a sign-in link"], trail
    assert stops[0]["skip"] and stops[0]["onScreen"], "the focused skip link must show"
    assert all(s["inNav"] for s in stops[2:4]), trail
    assert (stops[4]["tag"], stops[4]["id"]) == ("input", "id_email"), trail
    for stop, name in zip(stops, trail, strict=True):
        assert stop["visible"], f"{name} does not match :focus-visible"
        assert stop["outline"] != "none" and stop["outlineWidth"] != "0px", (
            f"{name} has no focus outline")
        # WCAG 1.4.11: a focus indicator needs 3:1 against what surrounds it.
        assert stop["ringContrast"] >= 3, (
            f"{name}: focus ring contrast {stop['ringContrast']:.2f}:1, below 3:1")

    # The skip link sends focus to the main content: the next Tab is the email field.
    page.goto(f"{portal}/signin/")
    page.keyboard.press("Tab")
    screenshots.take(page, path=str(artifacts / "skip-link.png"))
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_email"


def test_sign_in_by_email_and_file_a_request_without_javascript(
        portal: str, smtp: SMTPServer, new_context: NewContext, artifacts: Path) -> None:
    """The whole journey with JavaScript off: the destination survives the email round trip.

    Validation errors and comments without JavaScript are covered in
    tests/servicedesk/test_browser.py; this test adds the sign-in part and the ``next`` path.
    """
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"{portal}/requests/new/")
    assert "/signin/" in page.url
    page.get_by_label("Work email address").fill(ALICE)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    screenshots.take(page, path=str(artifacts / "check-inbox.png"), full_page=True)

    (link,) = deliver_and_read(smtp)
    page.goto(link.url)
    assert page.url == f"{portal}/requests/new/"
    assert page.get_by_role("button", name="Sign out").count() == 1
    page.get_by_label("Title").fill("Label printer jams")
    page.get_by_label("Description").fill("Dock 3 printer jams every few labels.")
    page.get_by_role("button", name="File the request").click()
    page.get_by_role("heading", name="Label printer jams").wait_for()
    screenshots.take(page, path=str(artifacts / "filed.png"), full_page=True)
    sr = ServiceRequest.objects.get()
    assert (sr.title, sr.created_by.email if sr.created_by else "") == ("Label printer jams", ALICE)
