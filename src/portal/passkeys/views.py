"""Views of the passkey journeys: read the request, call ``flows``, answer JSON or a page.

The ceremonies' four endpoints are POSTs from ``static/portal/passkeys.js`` that answer
JSON (CSRF-protected like every form: the script sends the page's token). The Passkeys
page and its rename/remove buttons are plain forms and work without JavaScript; only
adding a passkey needs it, because only the browser's WebAuthn API can make one.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.core.http import safe_next
from portal.core.ratelimit import RateLimitUnavailable
from portal.passkeys import enrolment, flows, offers
from portal.passkeys.errors import PasskeyNeedsRecentSignIn, PasskeyProblem
from portal.signin import sessions
from portal.signin.errors import RateLimited
from portal.signin.views import problems

# Set after a passkey was added or removed: the Passkeys page then offers to sign out the
# other sessions, in case the change was not the person's own (ASVS 7.4.3).
JUST_CHANGED_KEY = "portal_passkey_just_changed"

# A WebAuthn response is a few kilobytes; anything far larger is not one.
MAX_BODY = 64 * 1024


def _refusal(page: problems.Page, **extra: Any) -> JsonResponse:
    return JsonResponse({"ok": False, "title": page.title, "message": page.message, **extra},
                        status=page.status)


def _body(request: HttpRequest) -> tuple[str, dict[str, Any]]:
    """Return the credential's JSON text ("" when there is none) and the other fields.

    Never raises: a body that is not a credential goes to the flow as "", so it spends the
    challenge, counts against the limits and is audited like any other failed attempt.
    """
    try:
        data = json.loads(request.body) if len(request.body) <= MAX_BODY else None
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("credential"), dict):
        return "", {}
    return json.dumps(data["credential"]), data


def _options(text: str) -> HttpResponse:
    return HttpResponse(text, content_type="application/json")


def _list_page(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    user = request.user
    current = request.session.session_key
    others = (request.session.pop(JUST_CHANGED_KEY, False)
              and any(row.session_key != current
                      for row in sessions.active_sessions(user)))  # type: ignore[arg-type]
    return render(request, "passkeys/list.html", {
        "passkeys": flows.passkeys_of(user),  # type: ignore[arg-type]
        "recent": flows.signed_in_recently(request), "offer_sign_out_others": others,
        "recent_minutes": flows.recent_minutes(), "on_passkeys_page": True, **extra},
        status=status)


@never_cache
@require_GET
@login_required
def passkey_list(request: HttpRequest) -> HttpResponse:
    """The Passkeys page: the list, and the button that adds one."""
    return _list_page(request)


@never_cache
@require_POST
@login_required
def add_options(request: HttpRequest) -> HttpResponse:
    try:
        return _options(flows.begin_registration(request, request.user))  # type: ignore[arg-type]
    except PasskeyProblem as problem:
        return _refusal(problems.passkey_page(problem))


@never_cache
@require_POST
@login_required
def add(request: HttpRequest) -> HttpResponse:
    try:
        credential, data = _body(request)
        passkey = flows.finish_registration(request, request.user,  # type: ignore[arg-type]
                                            credential, str(data.get("name", "")))
    except PasskeyProblem as problem:
        return _refusal(problems.passkey_page(problem))
    messages.success(request, f"Passkey \u201c{passkey.name}\u201d added. Next time, sign in "
                     "with it from the sign-in page. We emailed you a notice.")
    request.session[JUST_CHANGED_KEY] = True
    return JsonResponse({"ok": True, "redirect": "/passkeys/"})


@never_cache
@require_POST
def signin_options(request: HttpRequest) -> HttpResponse:
    return _options(flows.begin_sign_in(request))


@never_cache
@require_POST
def signin(request: HttpRequest) -> HttpResponse:
    try:
        credential, data = _body(request)
        signed_in = flows.sign_in(request, credential, str(data.get("next") or "/"))
    except PasskeyProblem as problem:
        return _refusal(problems.passkey_page(problem))
    except RateLimitUnavailable:
        return _refusal(problems.UNAVAILABLE)
    except RateLimited as limited:
        response = _refusal(problems.wait_page(
            limited, what="passkey sign-in attempts from your network"))
        response["Retry-After"] = str(limited.retry_after)
        return response
    return JsonResponse({"ok": True, "redirect": signed_in.next_url})


@require_POST
@login_required
def rename(request: HttpRequest, passkey_id: int) -> HttpResponse:
    try:
        passkey = flows.rename(request, request.user,  # type: ignore[arg-type]
                               passkey_id, request.POST.get("name", "")[:200])
    except PasskeyProblem as problem:
        page = problems.passkey_page(problem)
        return _list_page(request, page.status, error=page, error_for=passkey_id)
    messages.success(request, f"Renamed to \u201c{passkey.name}\u201d.")
    return redirect("passkeys:list")


@require_POST
@login_required
def remove(request: HttpRequest, passkey_id: int) -> HttpResponse:
    try:
        passkey = flows.remove(request, request.user, passkey_id)  # type: ignore[arg-type]
    except PasskeyNeedsRecentSignIn as problem:
        page = problems.passkey_page(problem)
        return _list_page(request, page.status, error=page)
    except PasskeyProblem:
        messages.info(request, "That passkey had already been removed.")
        return redirect("passkeys:list")
    messages.success(request, f"Passkey \u201c{passkey.name}\u201d removed. It can no longer "
                     "sign you in; you can also delete it from your device. We emailed you "
                     "a notice.")
    request.session[JUST_CHANGED_KEY] = True
    return redirect("passkeys:list")


@require_POST
@login_required
def sign_in_again(request: HttpRequest) -> HttpResponse:
    """Sign this browser out and open the sign-in page for the same address, back to here."""
    email = request.user.email  # type: ignore[union-attr]
    sessions.end_session(request)
    query = urlencode({"next": reverse("passkeys:list"), "email": email})
    return redirect(f"{reverse('signin:start')}?{query}")


@never_cache
@require_GET
@login_required
def use(request: HttpRequest) -> HttpResponse:
    """Ask a signed-in person to sign in with their passkey (staff on their way to the admin)."""
    next_url = safe_next(request.GET.get("next"))
    return render(request, "passkeys/use.html", {"next": next_url, "on_passkeys_page": True})


@require_POST
def dismiss_offer(request: HttpRequest) -> HttpResponse:
    """"Not now" on the passkey offer: this browser does not show it again."""
    response = redirect(safe_next(request.POST.get("next")))
    offers.dismiss(response)
    return response


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # The enrolment secret is in this page's address: never let it leak to another site.
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def enrol(request: HttpRequest, token: str) -> HttpResponse:
    """An operator's one-time enrolment link: GET shows a button, its POST signs in.

    Loading the page uses nothing up, so a scanner following the link cannot spend it.
    """
    try:
        if request.method != "POST":
            link = enrolment.find(token)
            return _no_referrer(render(request, "passkeys/enrol.html",
                                       {"email": link.user.email}))
        enrolment.redeem(request, token)
    except PasskeyProblem as problem:
        page = problems.passkey_page(problem)
        return _no_referrer(render(request, "core/error.html", {
            "title": page.title, "message": page.message}, status=page.status))
    messages.success(request, "You are signed in. Add a passkey now: from then on, sign in "
                     "with it.")
    return _no_referrer(redirect("passkeys:list"))
