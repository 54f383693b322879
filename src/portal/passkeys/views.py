"""Views of the passkey journeys: read the request, call ``flows``, answer JSON or a page.

The ceremonies' four endpoints are POSTs from ``static/portal/passkeys.js`` that answer
JSON (CSRF-protected like every form: the script sends the page's token). The Passkeys
page and its rename/remove buttons are plain forms and work without JavaScript; only
adding a passkey needs it, because only the browser's WebAuthn API can make one.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal.core.ratelimit import RateLimitUnavailable
from portal.passkeys import flows
from portal.passkeys.errors import PasskeyProblem
from portal.signin.errors import RateLimited
from portal.signin.views import problems

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


@never_cache
@require_GET
@login_required
def passkey_list(request: HttpRequest) -> HttpResponse:
    """The Passkeys page: the list, and the button that adds one."""
    return render(request, "passkeys/list.html",
                  {"passkeys": flows.passkeys_of(request.user)})  # type: ignore[arg-type]


@never_cache
@require_POST
@login_required
def add_options(request: HttpRequest) -> HttpResponse:
    return _options(flows.begin_registration(request, request.user))  # type: ignore[arg-type]


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
                     "with it from the sign-in page.")
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
        return render(request, "passkeys/list.html", {
            "passkeys": flows.passkeys_of(request.user),  # type: ignore[arg-type]
            "error": page, "error_for": passkey_id}, status=page.status)
    messages.success(request, f"Renamed to \u201c{passkey.name}\u201d.")
    return redirect("passkeys:list")


@require_POST
@login_required
def remove(request: HttpRequest, passkey_id: int) -> HttpResponse:
    try:
        passkey = flows.remove(request, request.user, passkey_id)  # type: ignore[arg-type]
    except PasskeyProblem:
        messages.info(request, "That passkey had already been removed.")
        return redirect("passkeys:list")
    messages.success(request, f"Passkey \u201c{passkey.name}\u201d removed. It can no longer "
                     "sign you in; you can also delete it from your device.")
    return redirect("passkeys:list")
