"""Passkeys in Debian's Chromium with a virtual authenticator (DevTools WebAuthn domain).

The live server answers on http://localhost (a secure context, so WebAuthn works over
plain HTTP), and PORTAL_BASE_URL points at it: the relying party id is ``localhost``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.mail.worker import deliver_due
from portal.passkeys import challenges, flows
from portal.passkeys.errors import ChallengeMissing, PasskeyRejected
from portal.passkeys.models import Passkey, PasskeyHandle
from portal.signin.models import UserSession
from tests.browser.conftest import sign_in
from tests.signin.magic import html_of, request_as, text_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ALICE = "alice@northwind.example"

REPLAY = """async ([body, fresh]) => {
  const token = document.querySelector('#passkey-signin [name=csrfmiddlewaretoken]').value;
  const headers = {'Content-Type': 'application/json', 'X-CSRFToken': token};
  if (fresh) await fetch('/passkeys/signin/options/', {method: 'POST', headers});
  const response = await fetch('/passkeys/signin/', {method: 'POST', headers, body});
  return [response.status, await response.json()];
}"""


# A browser without passkey autofill (conditional mediation), as many still are.
NO_AUTOFILL = ("PublicKeyCredential.isConditionalMediationAvailable = "
               "() => Promise.resolve(false);")


def _with_authenticator(context: Any, page: Any, *, autofill: bool = False) -> None:
    """Give ``page`` a virtual platform authenticator (user verification, resident keys).

    Chromium hands a conditional (autofill) request straight to a virtual authenticator,
    as if the person had picked the passkey from the email field's suggestions; tests of
    the button turn autofill off so only the button signs in.
    """
    if not autofill:
        context.add_init_script(NO_AUTOFILL)
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True}})


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url("**/signin/signed-out/")


def _try_captured(assertion: str, base_url: str, settings: Any) -> object:
    """Offer ``assertion`` to the flow as the browser that asked for its challenge would."""
    settings.PORTAL_BASE_URL = base_url
    request = request_as(Client(), "/passkeys/signin/", "post")
    challenges.issue(request, "signin")
    # The challenge the authenticator signed, waiting in this session as if issued here.
    client_data = json.loads(_b64url(json.loads(assertion)["response"]["clientDataJSON"]))
    request.session[challenges.SESSION_KEY]["signin"]["c"] = _pad(client_data["challenge"])
    return flows.sign_in(request, assertion)


def _b64url(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(_pad(text))


def _pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)


def test_passkey_journey(browser, live_server, smtp, settings, alice) -> None:
    base = live_server.url
    assert base.startswith("http://localhost:")
    settings.PORTAL_BASE_URL = base
    context = browser.new_context()
    page = context.new_page()
    _with_authenticator(context, page)

    # Signed in by email, Alice adds a passkey on the Passkeys page.
    sign_in(page, base, smtp)
    page.get_by_role("link", name="Passkeys").click()
    page.get_by_label("Name (optional)").fill("Work laptop")
    page.get_by_role("button", name="Add a passkey").click()
    page.get_by_role("rowheader", name="Work laptop").wait_for()
    passkey = Passkey.objects.get()
    assert passkey.user == alice and passkey.transports == ["internal"]
    assert ALICE.encode() not in bytes(PasskeyHandle.objects.get(user=alice).handle)
    assert AuthEvent.objects.filter(tag=Tag.PASSKEY_REGISTERED, user=alice).count() == 1
    # The notice of the change, delivered by the worker like any mail.
    smtp.clear()
    deliver_due()
    (notice,) = smtp.wait_for(1, timeout=5)
    assert notice.message["Subject"].startswith("A passkey was added")
    assert "Work laptop" in text_of(notice) and "Work laptop" in html_of(notice)
    _sign_out(page)

    # An assertion made for this site but never delivered: captured for the checks below.
    page.goto(f"{base}/signin/")
    page.route("**/passkeys/signin/", lambda route: route.abort())
    # Waiting for the failure, not the request: the abort must have happened before unroute.
    with page.expect_event("requestfailed") as held:
        page.get_by_role("button", name="Sign in with a passkey").click()
    captured = json.dumps(json.loads(held.value.post_data or "{}")["credential"])
    page.unroute("**/passkeys/signin/")

    # Another relying party (127.0.0.1 instead of localhost), or the same host on another
    # origin: the portal refuses the assertion, though its signature is sound.
    port = base.rsplit(":", 1)[1]
    for elsewhere in (f"http://127.0.0.1:{port}", "http://localhost:1", f"https://localhost:{port}"):
        with pytest.raises(PasskeyRejected):
            _try_captured(captured, elsewhere, settings)
    assert AuthEvent.objects.filter(tag=Tag.PASSKEY_FAILED,
                                    reason="verification_failed").count() == 3
    # The same assertion at the portal's own origin is good: the refusals were the origin.
    assert _try_captured(captured, base, settings).email == ALICE

    # Signing in with the passkey from the sign-in page.
    page.goto(f"{base}/signin/")
    with page.expect_request("**/passkeys/signin/") as sent:
        page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{base}/")
    page.get_by_role("button", name="Sign out").wait_for()
    assertion = sent.value.post_data or ""
    assert UserSession.objects.filter(user=alice, method="passkey").count() == 2
    assert AuthEvent.objects.filter(tag=Tag.PASSKEY_SIGNED_IN, user=alice).count() == 2

    # Replayed, with no challenge waiting or with a fresh one: refused, nobody signed in.
    _sign_out(page)
    page.goto(f"{base}/signin/")
    for fresh in (False, True):
        status, answer = page.evaluate(REPLAY, [assertion, fresh])
        assert status == 400 and not answer["ok"], answer
    assert page.get_by_role("button", name="Sign out").count() == 0
    assert UserSession.objects.filter(user=alice, method="passkey").count() == 2

    # Removed, the passkey signs nobody in, though the device still offers it.
    sign_in(page, base, smtp)
    page.goto(f"{base}/passkeys/")
    page.get_by_role("button", name="Remove Work laptop").click()
    page.get_by_text("You have no passkeys yet.").wait_for()
    assert AuthEvent.objects.filter(tag=Tag.PASSKEY_REMOVED, user=alice).count() == 1
    _sign_out(page)
    page.goto(f"{base}/signin/")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.get_by_text("This passkey is not registered here").wait_for()
    context.close()
    with pytest.raises(ChallengeMissing):  # nothing waits in a browser that never asked
        flows.sign_in(request_as(Client(), "/passkeys/signin/", "post"), captured)


def test_staff_reach_the_admin_only_after_adding_and_using_a_passkey(
        browser, live_server, smtp, settings) -> None:
    from tests.factories import make_user

    base = live_server.url
    settings.PORTAL_BASE_URL = base
    sam = make_user("sam@cloudsentry.com", staff=True, superuser=True)
    context = browser.new_context()
    page = context.new_page()
    _with_authenticator(context, page)
    sign_in(page, base, smtp, email=sam.email)
    page.get_by_role("heading", name="Your account needs a passkey").wait_for()
    # An email sign-in does not open the admin: first, add a passkey.
    page.goto(f"{base}/admin/")
    page.wait_for_url(f"{base}/passkeys/")
    page.get_by_text("The staff admin opens only when you sign in with a passkey").wait_for()
    page.get_by_role("button", name="Add a passkey").click()
    page.get_by_role("rowheader", name="Passkey 1").wait_for()
    # Owning one is not enough either: this session began with an email link.
    page.goto(f"{base}/admin/")
    page.wait_for_url("**/passkeys/use/?next=%2Fadmin%2F")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{base}/admin/")
    page.get_by_role("heading", name="Staff admin").wait_for()
    assert UserSession.objects.filter(user=sam, method="passkey", ended_at=None).count() == 1
    context.close()


def test_autofill_signs_in_from_the_email_field(browser, live_server, smtp, settings,
                                                alice) -> None:
    base = live_server.url
    settings.PORTAL_BASE_URL = base
    context = browser.new_context()
    page = context.new_page()
    _with_authenticator(context, page, autofill=True)
    sign_in(page, base, smtp)
    page.goto(f"{base}/passkeys/")
    page.get_by_role("button", name="Add a passkey").click()
    page.get_by_role("rowheader", name="Passkey 1").wait_for()
    _sign_out(page)
    # The email field asks for passkey autofill; Chromium's virtual authenticator answers
    # the waiting conditional request as a person picking the suggestion would.
    page.goto(f"{base}/signin/?next=/requests/")
    field = page.get_by_label("Work email address")
    assert field.get_attribute("autocomplete") == "email webauthn"
    assert UserSession.objects.filter(user=alice, method="passkey").count() == 0
    with page.expect_request("**/passkeys/signin/"):
        field.focus()  # autofill starts when the person reaches the email field
    page.wait_for_url(f"{base}/requests/")
    page.get_by_role("button", name="Sign out", exact=True).wait_for()
    assert UserSession.objects.filter(user=alice, method="passkey").count() == 1
    context.close()


def test_the_offer_appears_once_and_can_be_dismissed(browser, live_server, smtp, settings,
                                                    alice) -> None:
    base = live_server.url
    settings.PORTAL_BASE_URL = base
    context = browser.new_context(java_script_enabled=False)  # the dismiss is a plain form
    page = context.new_page()
    offer = page.get_by_role("heading", name="Sign in faster next time: add a passkey")
    sign_in(page, base, smtp)
    offer.wait_for()
    page.goto(f"{base}/requests/")
    page.get_by_role("heading", name="Service requests").first.wait_for()
    assert offer.count() == 0  # once per sign-in
    _sign_out(page)
    sign_in(page, base, smtp)
    offer.wait_for()
    page.get_by_role("button", name="Not now").click()
    page.wait_for_url(f"{base}/")
    assert offer.count() == 0
    _sign_out(page)
    sign_in(page, base, smtp)  # dismissed in this browser: never again
    assert offer.count() == 0
    context.close()
