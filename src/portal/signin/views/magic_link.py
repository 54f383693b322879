"""Views of the email-link journey: read the request, call the flow, pick the page.

The journey itself (who may sign in with one click, cool-downs, tries, limits) lives in
``portal.signin.flows.magic_link``; the words for every refusal in ``problems``. What is
left here is HTTP: methods, cookies, redirects, templates.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.core.http import safe_next
from portal.core.ratelimit import RateLimitUnavailable
from portal.signin import tokens
from portal.signin.errors import CodeLocked, CodeProblem, LinkProblem, RateLimited, ResendTooSoon
from portal.signin.flows import magic_link as flow
from portal.signin.forms import LinkRequestForm
from portal.signin.oidc import providers
from portal.signin.views import problems

BINDING_MAX_AGE = 7 * 86400
PROBLEM_SALT = "portal.signin.views.link_problem"
PROBLEM_MAX_AGE = 600


def _page_context(**extra: Any) -> dict[str, Any]:
    return {"providers": providers.configured_providers(),
            "from_email": settings.DEFAULT_FROM_EMAIL,
            "link_minutes": settings.MAGIC_LINK_TTL_SECONDS // 60, **extra}


def _cookie(response: HttpResponse, name: str, value: str, *, max_age: int, path: str) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # The token is in this page's address: never let it leak to another site (rule 7).
    response["Referrer-Policy"] = "no-referrer"
    return response


def _wait(request: HttpRequest, template: str, page: problems.Page, retry_after: int,
          **context: Any) -> HttpResponse:
    response = render(request, template, _page_context(page=page, **context),
                      status=page.status)
    response["Retry-After"] = str(retry_after)
    return response


def _unavailable(request: HttpRequest) -> HttpResponse:
    # Fail closed, calmly: without working counters the door would be unguarded.
    page = problems.UNAVAILABLE
    return render(request, "signin/unavailable.html", _page_context(page=page),
                  status=page.status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def start(request: HttpRequest) -> HttpResponse:
    """The sign-in page; its form asks for a link (rule 1: the same answer for every address)."""
    next_url = safe_next(request.POST.get("next") or request.GET.get("next"))
    if request.method != "POST":
        if request.user.is_authenticated:
            return redirect(next_url)
        form = LinkRequestForm(initial={"next": next_url,
                                        "email": request.GET.get("email", "")[:254]})
        return render(request, "signin/start.html", _page_context(form=form, next=next_url))
    form = LinkRequestForm(request.POST)
    if not form.is_valid():
        return render(request, "signin/start.html",
                      _page_context(form=form, next=next_url), status=400)
    email = form.cleaned_data["email"]
    try:
        requested = flow.request_link(request, email=email, next_url=next_url)
    except ResendTooSoon as too_soon:
        return _check_inbox_page(request, notice=problems.wait_page(too_soon, what=""),
                                 retry_after=too_soon.retry_after)
    except RateLimitUnavailable:
        return _unavailable(request)
    except RateLimited as limited:
        return _wait(request, "signin/rate_limited.html",
                     problems.wait_page(limited, what="requests for sign-in links"),
                     limited.retry_after, email=email)
    response = redirect("signin:check_inbox")
    _cookie(response, settings.SIGNIN_BINDING_COOKIE, requested.binding,
            max_age=BINDING_MAX_AGE, path="/")  # "/": the __Host- prefix demands it
    return response


def _check_inbox_page(request: HttpRequest, *, code_error: str = "", code_locked: bool = False,
                      notice: problems.Page | None = None, status: int | None = None,
                      retry_after: int = 0) -> HttpResponse:
    waiting = flow.pending(request)
    if waiting is None:
        return redirect("signin:start")
    code_status = 400 if code_error else 200
    response = render(request, "signin/check_inbox.html", _page_context(
        pending=waiting, email=waiting.email, expires_at=waiting.expires_at,
        cooldown=waiting.cooldown_left, code_error=code_error, code_locked=code_locked,
        notice=notice), status=status or (notice.status if notice else code_status))
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@never_cache
def check_inbox(request: HttpRequest) -> HttpResponse:
    return _check_inbox_page(request)


@never_cache
@require_POST
def enter_code(request: HttpRequest) -> HttpResponse:
    """The short code from the email, typed into the tab that asked (rule 11)."""
    if flow.pending(request) is None:
        return redirect("signin:start")
    try:
        signed_in = flow.redeem_code(request, request.POST.get("code", "")[:100])
    except RateLimitUnavailable:
        return _unavailable(request)
    except RateLimited as limited:
        page = problems.wait_page(limited, what="codes tried from your network")
        return _check_inbox_page(request, status=page.status, retry_after=limited.retry_after,
                                 code_error=f"{page.message} The link in the email still works.")
    except CodeProblem as problem:
        return _check_inbox_page(request, code_error=problems.code_message(problem),
                                 code_locked=isinstance(problem, CodeLocked))
    except LinkProblem as problem:
        return _show_problem(request, problem)
    return redirect(signed_in.next_url)


@never_cache
@require_http_methods(["GET", "HEAD"])
def open_link(request: HttpRequest, token: str) -> HttpResponse:
    """A link from an email. Loading it consumes nothing unless this browser asked (rule 6).

    Every outcome but the one-click sign-in is a redirect to a page without the token in
    its address, as Django's password reset does: the token cannot leak through history or
    a Referer, and the page's forms post with a normal Origin (under the ``no-referrer``
    policy Chromium sends ``Origin: null``, which CSRF protection rightly refuses).
    """
    try:
        outcome = flow.open_link(request, token, safe_method=request.method == "GET")
    except LinkProblem as problem:
        return _no_referrer(_show_problem(request, problem))
    if isinstance(outcome, flow.AwaitingConfirmation):
        response = redirect("signin:confirm")
        _cookie(response, settings.SIGNIN_TICKET_COOKIE, outcome.ticket,
                max_age=settings.MAGIC_LINK_TTL_SECONDS, path="/signin/confirm/")
        return _no_referrer(response)
    return _no_referrer(redirect(outcome.next_url))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest) -> HttpResponse:
    """"Continue as alice@…": the other-browser step; only the POST consumes the link."""
    ticket = request.COOKIES.get(settings.SIGNIN_TICKET_COOKIE, "")
    if not ticket:
        return redirect("signin:start")
    try:
        if request.method == "POST":
            signed_in = flow.confirm_link(request, ticket)
            done = redirect(signed_in.next_url)
            done.delete_cookie(settings.SIGNIN_TICKET_COOKIE, path="/signin/confirm/")
            return done
        sign_in = flow.opened_request(request, ticket)
    except LinkProblem as problem:
        response = _show_problem(request, problem)
        response.delete_cookie(settings.SIGNIN_TICKET_COOKIE, path="/signin/confirm/")
        return response
    return render(request, "signin/confirm.html", {"sign_in": sign_in})


def _show_problem(request: HttpRequest, problem: LinkProblem) -> HttpResponse:
    """Send the browser to the page that explains ``problem`` (rule 8).

    Only the browser that asked for the link gets its address prefilled in the "fresh
    link" form: anyone else who holds the link learns nothing about whose it was.
    """
    binding = tokens.clean_binding(request.COOKIES.get(settings.SIGNIN_BINDING_COOKIE))
    prefill = tokens.holds_binding(binding, problem.binding_hash)
    response = redirect("signin:link_problem")
    _cookie(response, settings.SIGNIN_PROBLEM_COOKIE, signing.dumps(
        {"kind": problem.kind, "email": problem.email if prefill else ""}, salt=PROBLEM_SALT),
        max_age=PROBLEM_MAX_AGE, path="/signin/link-problem/")
    return response


@never_cache
def link_problem(request: HttpRequest) -> HttpResponse:
    """Say plainly why a link did not work, and offer a fresh one (rule 8)."""
    try:
        shown = signing.loads(request.COOKIES.get(settings.SIGNIN_PROBLEM_COOKIE, ""),
                              salt=PROBLEM_SALT, max_age=PROBLEM_MAX_AGE)
        kind, email = str(shown["kind"]), str(shown["email"])
    except (signing.BadSignature, KeyError, TypeError):
        return redirect("signin:start")
    page = problems.link_page(kind)
    return render(request, "signin/link_problem.html", _page_context(
        page=page, kind=kind, email=email), status=page.status)
