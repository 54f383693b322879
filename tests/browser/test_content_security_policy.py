"""Every page works with the Content-Security-Policy in force: Chromium reports no violation.

Playwright's contexts here keep the CSP (no ``bypass_csp``). A listener added before any
page script (an init script, which the CSP does not govern) forwards each
``securitypolicyviolation`` event to the test; console errors and policy warnings
(a Permissions-Policy feature Chromium does not know, an ignored header) count too, as
do uncaught script errors. Each document the portal serves must carry the strict policy
with a nonce of its own, so a page without the header cannot pass by being unguarded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from portal.accounts.models import GoogleWorkspaceDomain, Organization, User
from portal.core.clock import now
from portal.devtools import catcher
from portal.helpcenter.articles import all_articles
from portal.mail.compose import compose
from portal.mail.outbox import new_message_id
from portal.orgadmin.models import Invitation
from portal.servicedesk import services
from portal.signin.models import ExternalIdentity, SignInRequest
from tests.browser.conftest import ALICE, BOB, sign_in
from tests.conftest import require
from tests.core.urls_that_fail import FAIL_PATH
from tests.factories import make_user
from tests.passkeys.support import passkey_browser
from tests.signin.magic import ask, deliver_and_read
from tests.support import screenshots
from tests.support.oidc.harness import TestProvider, callback_url, installed
from tests.support.smtp import SMTPServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPORT = "__portalPolicyViolation"
# Runs in every document before its own scripts; the CSP does not apply to it.
LISTEN = f"""
document.addEventListener('securitypolicyviolation', (e) => {{
  window.{REPORT}({{directive: e.effectiveDirective, blocked: e.blockedURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample, document: e.documentURI}});
}});
"""
# One macrotask: violation events queued while the page loaded have been dispatched.
SETTLE = "() => new Promise((resolve) => setTimeout(resolve, 0))"
POLICY_WORDS = ("Content Security Policy", "Content-Security-Policy", "Permissions-Policy",
                "Cross-Origin-Opener-Policy", "Refused to")
# Chromium logs a document answered 4xx as a failed load; those statuses are the page.
# It also asks for /favicon.ico on its own, now and then; the portal has none.
FAILED_LOAD = "Failed to load resource: the server responded with a status of"
FAVICON = "/favicon.ico"


def directives_of(policy: str) -> dict[str, list[str]]:
    """Split a CSP header into {directive: [sources]}."""
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


def weakness_of(policy: str) -> str:
    """Return what is missing from a document's CSP for the suite's purposes ("" if none)."""
    found = directives_of(policy)
    scripts = found.get("script-src", [])
    if not policy:
        return "no Content-Security-Policy"
    if "'unsafe-inline'" in scripts or not any(s.startswith("'nonce-") for s in scripts):
        return f"script-src is not nonce-based: {scripts}"
    for name in ("object-src", "base-uri", "frame-ancestors"):
        if found.get(name) != ["'none'"]:
            return f"{name} is not 'none': {found.get(name)}"
    return ""


@dataclass
class PolicyWatch:
    """Browser contexts that keep the CSP and report every violation on the portal's pages."""

    browser: Any
    origin: str
    folder: Path
    problems: list[str] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)
    opened: list[Any] = field(default_factory=list)
    # Requests a test sets up to be refused (4xx): their failed load is expected, not a fault.
    refused_on_purpose: set[str] = field(default_factory=set)
    visited: int = 0

    def ours(self, url: str) -> bool:
        return url == self.origin or url.startswith(self.origin + "/")

    def new_page(self, **options: Any) -> Any:
        context = self.browser.new_context(viewport={"width": 1000, "height": 760}, **options)
        context.set_default_timeout(30_000)  # as tests/browser/conftest.py
        self.opened.append(context)
        context.expose_binding(REPORT, self._violation)
        context.add_init_script(LISTEN)
        context.on("console", self._console)
        context.on("weberror", self._error)
        context.on("response", self._response)
        return context.new_page()

    def _violation(self, source: Any, report: dict[str, Any]) -> None:
        if self.ours(str(report.get("document", ""))):
            self.problems.append(
                f"{report['document']}: {report['directive']} blocked {report['blocked']!r} "
                f"({report['source']}:{report['line']} {report['sample']!r})")

    def _console(self, message: Any) -> None:
        url = (message.location or {}).get("url") or (message.page.url if message.page else "")
        if not self.ours(url):
            return  # the identity provider's own pages are not ours to judge
        text = message.text
        if message.type == "error":
            if text.startswith(FAILED_LOAD) and (
                    url in {d.url for d in self.documents} or url == self.origin + FAVICON
                    or url in self.refused_on_purpose):
                return
            self.problems.append(f"{url}: console error: {text}")
        elif any(word in text for word in POLICY_WORDS):
            self.problems.append(f"{url}: console {message.type}: {text}")

    def _error(self, error: Any) -> None:
        url = error.page.url if error.page else ""
        if self.ours(url):
            self.problems.append(f"{url}: uncaught script error: {error.error}")

    def _response(self, response: Any) -> None:
        if response.request.is_navigation_request() and self.ours(response.url):
            self.documents.append(response)

    def visit(self, page: Any, path: str, status: int = 200) -> None:
        """Load ``path`` of the portal and check the answer's status."""
        response = page.goto(self.origin + path)
        assert response is not None and response.status == status, (
            f"{path}: {response.status if response else 'no response'}, expected {status}")
        self.seen(page, path.strip("/").replace("/", "-") or "home")

    def seen(self, page: Any, name: str) -> None:
        """Note the page as it is now (after a goto or a click) and let events arrive."""
        page.wait_for_load_state("load")
        page.evaluate(SETTLE)
        screenshots.take(page, path=str(self.folder / f"{re.sub(r'[^A-Za-z0-9_-]', '_', name)}.png"),
                        full_page=True)
        self.visited += 1

    def assert_clean(self) -> None:
        assert self.visited, "no page was loaded"
        nonces: list[str] = []
        for document in self.documents:
            policy = document.header_value("content-security-policy") or ""
            weakness = weakness_of(policy)
            if weakness:
                self.problems.append(f"{document.url} ({document.status}): {weakness}")
            nonces += [s for s in directives_of(policy).get("script-src", [])
                       if s.startswith("'nonce-")]
        repeated = {n for n in nonces if nonces.count(n) > 1}
        if repeated:
            self.problems.append(f"nonces used for more than one response: {sorted(repeated)}")
        if self.problems:
            pytest.fail(f"{len(self.problems)} policy problem(s) over {self.visited} page(s) "
                        f"and {len(self.documents)} documents:\n" + "\n".join(self.problems),
                        pytrace=False)

    def close(self) -> None:
        for context in self.opened:
            context.close()


@pytest.fixture
def watch(browser: Any, portal: str, artifacts: Path) -> Iterator[PolicyWatch]:
    watcher = PolicyWatch(browser, portal, artifacts)
    yield watcher
    watcher.close()


@pytest.fixture(scope="module")
def google(live_server: Any) -> Iterator[TestProvider]:
    """A real OpenID provider (npm oidc-provider) shaped like Google, with Alice's account."""
    require("node and tests/support/oidc/node_modules (npm install --prefix tests/support/oidc)",
            installed())
    provider = TestProvider("google", {"alice": {"claims": {
        "sub": "google-alice", "email": ALICE, "email_verified": True,
        "hd": "northwind.example", "name": "Alice Moreno"}}},
        [callback_url(live_server.url, "google")])
    provider.start()
    yield provider
    provider.stop()


def test_the_watch_reports_a_violation(watch: PolicyWatch) -> None:
    """The listener works: an inline style set on a portal page is reported as blocked."""
    page = watch.new_page()
    watch.visit(page, "/signin/")
    # Playwright's evaluate is not governed by script-src, but the style attribute it
    # sets is governed by style-src: Chromium must refuse it and say so.
    page.evaluate("document.body.setAttribute('style', 'outline: 3px solid red')")
    page.evaluate(SETTLE)
    assert any("style-src-attr" in problem for problem in watch.problems), watch.problems


def test_sign_in_journey_and_error_pages_keep_the_policy(
        watch: PolicyWatch, portal: str, smtp: SMTPServer, settings: Any,
        google: TestProvider) -> None:
    org = Organization.objects.get()
    GoogleWorkspaceDomain.objects.create(organization=org, domain="northwind.example")
    settings.OIDC_PROVIDERS = {
        "google": google.settings,
        "microsoft": {"client_id": "portal-microsoft", "client_secret": "unused",
                      "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration"}}
    page = watch.new_page()
    watch.visit(page, "/signin/")
    page.get_by_label("Work email address").fill("not an address")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.locator(".field-error").wait_for()
    watch.seen(page, "signin-error")
    page.get_by_label("Work email address").fill(ALICE)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    watch.seen(page, "check-inbox")
    # signin.js loads and runs under the policy: the cool-down counts down.
    first = page.locator(".cooldown-seconds").inner_text()
    page.wait_for_function(
        "(first) => document.querySelector('.cooldown-seconds').textContent !== first", arg=first)
    (link,) = deliver_and_read(smtp)
    page.get_by_label("Enter the 6-digit code from the email").fill("000000")
    page.get_by_role("button", name="Sign in with the code").click()
    page.locator("#code-error").wait_for()
    watch.seen(page, "check-inbox-code-error")

    other = watch.new_page()
    other.goto(link.url)
    other.get_by_role("heading", name=f"Sign in as {ALICE}?").wait_for()
    watch.seen(other, "confirm")
    other.get_by_role("button", name="Sign in on this device").click()
    other.get_by_role("button", name="Sign out").wait_for()
    watch.seen(other, "signed-in-by-confirming")
    page.goto(link.url)
    page.get_by_role("heading", name="This link has already been used").wait_for()
    watch.seen(page, "link-used")

    smtp.clear()
    ask(Client(), BOB)
    (old,) = deliver_and_read(smtp)
    SignInRequest.objects.filter(email=BOB).update(expires_at=now() - timedelta(minutes=1))
    page.goto(old.url)
    page.get_by_role("heading", name="This link has expired").wait_for()
    watch.seen(page, "link-expired")
    watch.visit(page, f"/signin/link/{'x' * 43}/", status=404)

    allowed = int(settings.SIGNIN_RATE_LIMITS["address"].split("/")[0])
    for _ in range(allowed):
        ask(Client(), "carol@northwind.example")
    limited = watch.new_page()
    watch.visit(limited, "/signin/")
    limited.get_by_label("Work email address").fill("carol@northwind.example")
    limited.get_by_role("button", name="Email me a sign-in link").click()
    limited.get_by_role("heading", name=re.compile(r"^Please wait \d+ minutes?$")).wait_for()
    watch.seen(limited, "rate-limited")

    watch.visit(page, "/help/")
    for article in all_articles():
        watch.visit(page, f"/help/{article.slug}/")

    # The CSRF failure page: cookies gone between loading the form and sending it.
    watch.visit(page, "/signin/")
    page.context.clear_cookies()
    # Focusing the email field starts passkey autofill, whose request is refused exactly
    # like the form is (no CSRF cookie any more).
    watch.refused_on_purpose.add(watch.origin + "/passkeys/signin/options/")
    page.get_by_label("Work email address").fill(ALICE)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("heading", name="Please try that again").wait_for()
    watch.seen(page, "csrf-failure")
    watch.visit(page, "/no-such-page/", status=404)
    settings.ROOT_URLCONF = "tests.core.urls_that_fail"
    watch.visit(page, FAIL_PATH, status=500)

    # Sign in with Google: the button is a form whose redirect leaves for the provider,
    # which form-action must allow; then back through the callback, signed in.
    federated = watch.new_page()
    watch.visit(federated, "/requests/", status=200)  # the sign-in page, after a redirect
    federated.get_by_role("button", name="Sign in with Google").click()
    federated.wait_for_load_state("load")
    federated.evaluate(SETTLE)
    assert federated.url.startswith(google.base_url), watch.problems
    federated.get_by_label("Account").fill("alice")
    federated.get_by_role("button", name="Sign in").click()
    federated.wait_for_url(f"{portal}/requests/")
    watch.seen(federated, "signed-in-with-google")
    assert ExternalIdentity.objects.filter(user__email=ALICE, provider="google").exists()
    watch.assert_clean()


def test_signed_in_pages_keep_the_policy(watch: PolicyWatch, portal: str,
                                         smtp: SMTPServer) -> None:
    alice = User.objects.get(email=ALICE)
    sr = services.file_request(alice, title="Warehouse printer offline",
                               description="Dock 3 labels print blank.")
    services.add_comment(alice, sr, "Restarted it, no change.")
    page = watch.new_page()
    sign_in(page, portal, smtp)
    second = watch.new_page()
    sign_in(second, portal, smtp)
    for path in ("/", "/requests/", "/requests/?status=closed", sr.get_absolute_url(),
                 "/requests/new/", "/signin/sessions/", "/signin/signout/"):
        watch.visit(page, path)
    watch.visit(page, "/requests/999999/", status=404)
    page.goto(f"{portal}/requests/new/")
    page.get_by_role("button", name="File the request").click()
    page.locator("#form-errors").wait_for()
    watch.seen(page, "request-new-errors")
    page.goto(f"{portal}/signin/sessions/")
    page.locator("table.sessions").get_by_role("button", name="Sign out").first.click()
    page.get_by_text("That session has been signed out.").wait_for()
    watch.seen(page, "sessions-after-ending-one")
    # Not staff: the admin says so on a page of its own.
    watch.visit(page, "/admin/", status=403)
    page.goto(f"{portal}/signin/signout/")
    page.get_by_role("main").get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="You are signed out.").wait_for()
    watch.seen(page, "signed-out")
    watch.assert_clean()


def admin_paths() -> list[str]:
    """Return the staff admin's pages: index, each app, and each model's list and forms."""
    paths = [reverse("admin:index")]
    for model, _ in sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label):
        meta = model._meta
        prefix = f"admin:{meta.app_label}_{meta.model_name}"
        if reverse("admin:app_list", args=[meta.app_label]) not in paths:
            paths.append(reverse("admin:app_list", args=[meta.app_label]))
        paths += [reverse(f"{prefix}_changelist"), reverse(f"{prefix}_add")]
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            paths += [reverse(f"{prefix}_{view}", args=[first.pk])
                      for view in ("change", "history", "delete")]
    return paths


def test_staff_admin_pages_keep_the_policy(watch: PolicyWatch, portal: str,
                                           smtp: SMTPServer) -> None:
    staff = make_user("sam@cloudsentry.example", staff=True, superuser=True,
                      full_name="Sam Staff")
    alice = User.objects.get(email=ALICE)
    services.file_request(alice, title="Printer offline", description="Dock 3.")
    ExternalIdentity.objects.create(user=alice, provider="google", issuer="https://issuer",
                                    subject="google-alice", email_at_link=ALICE)
    Group.objects.create(name="Technicians")
    Invitation.objects.create(organization=alice.organization, email="dora@northwind.example",
                              invited_by=alice, link_seed="0" * 64, token_hash="1" * 64,
                              expires_at=now() + timedelta(days=7))
    page = watch.new_page()
    # A real sign-in: it leaves a request, an email, audit rows and a session to look at.
    sign_in(page, portal, smtp, email=staff.email)
    watch.seen(page, "staff-home")
    passkey_browser(page, staff)  # the admin opens only for a passkey session
    paths = admin_paths()
    registered = len(admin.site._registry)
    assert len([p for p in paths if p.endswith("/change/")]) == registered, (
        "every admin model needs a row here, so its change form is loaded")
    for path in paths:
        response = page.goto(portal + path)
        assert response is not None and response.status in (200, 403), (path, response.status)
        watch.seen(page, path)
    # The JavaScript widgets: search-as-you-type (autocomplete) and the two-list selector.
    page.goto(portal + reverse("admin:accounts_membership_add"))
    page.locator(".select2-selection").first.click()
    page.locator(".select2-search__field").fill("alice")
    page.locator(".select2-results__option", has_text=ALICE).wait_for()
    watch.seen(page, "admin-autocomplete")
    watch.assert_clean()


def test_dev_mail_pages_keep_the_policy(watch: PolicyWatch, portal: str, settings: Any,
                                        tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    settings.DEBUG = True
    settings.PORTAL_DEV_MAIL_DIR = str(maildir)
    link = f"{portal}/signin/link/{'a' * 43}/"
    composed = compose(to=ALICE, subject="Your sign-in link", text=f"Sign in: {link}\n",
                       html=f'<p style="color: #111"><a href="{link}">Sign in</a></p>',
                       message_id=new_message_id(), date=now())
    catcher.open_maildir(maildir).add(composed.data)
    page = watch.new_page()
    watch.visit(page, "/dev/mail/")
    page.get_by_role("link", name="Your sign-in link").click()
    page.get_by_role("heading", name="Your sign-in link").wait_for()
    watch.seen(page, "dev-mail-message")
    watch.assert_clean()
