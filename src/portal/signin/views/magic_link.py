"""Views of the email-link journey: read the request, call the flow, pick the page.

The journey itself (who may sign in with one click, cool-downs, tries, limits) lives in
``portal.signin.flows.magic_link``; the words for every refusal in ``problems``. What is
left here is HTTP: methods, cookies, redirects, templates.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.core.http import describe_agent, safe_next
from portal.core.ratelimit import RateLimitUnavailable
from portal.core.text import duration_text
from portal.signin import tokens
from portal.signin.errors import (
    ApprovalProblem,
    CodeLocked,
    CodeProblem,
    LinkProblem,
    NotApproved,
    RateLimited,
    ResendTooSoon,
    SameBrowserOnly,
)
from portal.signin.flows import magic_link as flow
from portal.signin.forms import LinkRequestForm
from portal.signin.oidc import providers
from portal.signin.views import problems

BINDING_MAX_AGE = 7 * 86400
PROBLEM_SALT = "portal.signin.views.link_problem"
PROBLEM_MAX_AGE = 600
# The ticket cookie goes only to the other device's page and its two forms.
TICKET_PATH = "/signin/confirm/"


def _page_context(**extra: Any) -> dict[str, Any]:
    return {"providers": providers.configured_providers(),
            "from_email": settings.DEFAULT_FROM_EMAIL,
            "link_lifetime": duration_text(settings.MAGIC_LINK_TTL_SECONDS), **extra}


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
                      retry_after: int = 0, auto_continue: bool = True) -> HttpResponse:
    waiting = flow.pending(request)
    state = flow.waiting_status(request)
    if waiting is None or state is None:
        return redirect("signin:start")
    code_status = 400 if code_error else 200
    response = render(request, "signin/check_inbox.html", _page_context(
        pending=waiting, email=waiting.email, expires_at=waiting.expires_at,
        cooldown=waiting.cooldown_left, code_error=code_error, code_locked=code_locked,
        notice=notice, approval=state, approval_words=problems.waiting_words(state.state),
        auto_continue=auto_continue),
        status=status or (notice.status if notice else code_status))
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


@never_cache
def check_inbox(request: HttpRequest) -> HttpResponse:
    return _check_inbox_page(request)


@never_cache
@require_GET
def check_inbox_status(request: HttpRequest) -> JsonResponse:
    """The asking tab's poll (rule 11): its request's state, as JSON, for this session only.

    ``never_cache`` makes it ``no-store``: no cache on the way may keep one browser's answer
    for another. The number is never in it; only the page the asking session loads shows it.
    """
    try:
        state = flow.waiting_status(request, polled=True)
    except RateLimitUnavailable:
        return JsonResponse({"state": "unavailable", "final": False}, status=503)
    except RateLimited as limited:
        # The page's script waits and asks again; nothing about the request is said.
        response = JsonResponse({"state": "later", "final": False}, status=429)
        response["Retry-After"] = str(limited.retry_after)
        return response
    if state is None:
        # 200, not 404: a poll already in flight when the tab signed in (or moved on) finds
        # nothing waiting, which is an answer, not an error for the browser's console.
        return JsonResponse({"state": "none", "message": problems.NOT_WAITING, "final": True})
    return JsonResponse({"state": state.state, "message": problems.waiting_words(state.state),
                         "final": state.final})


@never_cache
@require_POST
def continue_approved(request: HttpRequest) -> HttpResponse:
    """"I've approved it, continue": the asking tab signs in once another device approved.

    The tab's script submits the same form by itself when its poll says "approved".
    """
    if flow.pending(request) is None:
        return redirect("signin:start")
    try:
        signed_in = flow.claim_approval(request)
    except NotApproved:
        # Not submitted by itself again from this page: that could only loop.
        return _check_inbox_page(request, notice=problems.NOT_APPROVED, auto_continue=False)
    except LinkProblem as problem:
        return _show_problem(request, problem)
    return redirect(signed_in.next_url)


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
                max_age=settings.MAGIC_LINK_TTL_SECONDS, path=TICKET_PATH)
        return _no_referrer(response)
    return _no_referrer(redirect(outcome.next_url))


def _ticket(request: HttpRequest) -> str:
    return request.COOKIES.get(settings.SIGNIN_TICKET_COOKIE, "")


def _without_ticket(response: HttpResponse) -> HttpResponse:
    # The request behind the ticket is finished with: the cookie has nothing left to name.
    response.delete_cookie(settings.SIGNIN_TICKET_COOKIE, path=TICKET_PATH)
    return response


def _confirm_page(request: HttpRequest, ticket: str, *, number_error: str = "",
                  notice: problems.Page | None = None, status: int = 200) -> HttpResponse:
    """The other device's page: who asks, from where, and the choices (rules 6, 11)."""
    try:
        shown = flow.confirmation(request, ticket)
    except LinkProblem as problem:
        return _without_ticket(_show_problem(request, problem))
    return render(request, "signin/confirm.html", _page_context(
        sign_in=shown.sign_in, same_browser_only=shown.same_browser_only,
        requested_from=describe_agent(shown.sign_in.user_agent),
        number_error=number_error, notice=notice), status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest) -> HttpResponse:
    """The link opened in another browser: its page, and its "Sign in on this device".

    Only the POST consumes the link (rule 6); in strict mode it is refused, and the page
    comes back with the choices that remain (rule 11).
    """
    ticket = _ticket(request)
    if not ticket:
        return redirect("signin:start")
    if request.method != "POST":
        return _confirm_page(request, ticket)
    try:
        signed_in = flow.confirm_link(request, ticket)
    except SameBrowserOnly:
        page = problems.SAME_BROWSER_ONLY
        return _confirm_page(request, ticket, notice=page, status=page.status)
    except LinkProblem as problem:
        return _without_ticket(_show_problem(request, problem))
    return _without_ticket(redirect(signed_in.next_url))


@never_cache
@require_POST
def confirm_approve(request: HttpRequest) -> HttpResponse:
    """"Sign in on the device that asked", with the number shown there (rule 11)."""
    ticket = _ticket(request)
    if not ticket:
        return redirect("signin:start")
    try:
        approved = flow.approve(request, ticket, request.POST.get("number", "")[:100])
    except ApprovalProblem as problem:
        return _confirm_page(request, ticket, number_error=problems.number_message(problem),
                             status=400)
    except LinkProblem as problem:
        return _without_ticket(_show_problem(request, problem))
    return _without_ticket(render(request, "signin/approved.html", _page_context(
        approved=approved)))


@never_cache
@require_POST
def confirm_refuse(request: HttpRequest) -> HttpResponse:
    """"This wasn't me": the request is stopped, and the asking tab is told (rule 11)."""
    ticket = _ticket(request)
    if not ticket:
        return redirect("signin:start")
    try:
        flow.refuse(request, ticket)
    except LinkProblem as problem:
        return _without_ticket(_show_problem(request, problem))
    return _without_ticket(render(request, "signin/refused.html", _page_context()))


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
