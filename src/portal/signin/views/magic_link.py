"""Views of the email-link journey: read the request, call the flow, pick the page."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.audit.tags import Tag
from portal.core.clock import now
from portal.core.http import client_ip, describe_agent, safe_next, user_agent
from portal.core.ratelimit import RateLimitUnavailable
from portal.signin.errors import (
    CodeLocked,
    CodeMalformed,
    CodeProblem,
    CodeWrong,
    LinkProblem,
    RateLimited,
)
from portal.signin.flows import magic_link as flow
from portal.signin.flows.finish import finish_sign_in
from portal.signin.forms import LinkRequestForm
from portal.signin.oidc import providers

PENDING_KEY = "signin_pending"
CONFIRM_KEY = "signin_confirm"
PROBLEM_KEY = "signin_link_problem"
BINDING_MAX_AGE = 7 * 86400


def _binding(request: HttpRequest) -> str:
    value = request.COOKIES.get(settings.SIGNIN_BINDING_COOKIE, "")
    return value if len(value) == 43 else ""


def _set_binding(response: HttpResponse, value: str) -> None:
    response.set_cookie(settings.SIGNIN_BINDING_COOKIE, value, max_age=BINDING_MAX_AGE,
                        path="/", httponly=True, samesite="Lax",
                        secure=settings.SESSION_COOKIE_SECURE)


def _page_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {"providers": providers.configured_providers(),
            "from_email": settings.DEFAULT_FROM_EMAIL,
            "link_minutes": settings.MAGIC_LINK_TTL_SECONDS // 60, **extra}


def _cooldown_left(request: HttpRequest) -> int:
    pending = request.session.get(PENDING_KEY)
    if not pending:
        return 0
    waited = now().timestamp() - pending["requested_at"]
    return max(0, int(settings.SIGNIN_RESEND_COOLDOWN_SECONDS - waited + 0.999))


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
        return render(request, "signin/start.html", _page_context(request, form=form,
                                                                  next=next_url))
    form = LinkRequestForm(request.POST)
    if not form.is_valid():
        return render(request, "signin/start.html",
                      _page_context(request, form=form, next=next_url), status=400)
    email = form.cleaned_data["email"]
    pending = request.session.get(PENDING_KEY)
    if pending and pending["email"] == email and _cooldown_left(request):
        # "Send another link" pressed again too soon: the page already says when it can be.
        return redirect("signin:check_inbox")
    binding = _binding(request) or secrets.token_urlsafe(32)
    try:
        requested = flow.request_link(email=email, next_url=next_url, binding=binding,
                                      ip=client_ip(request), agent=user_agent(request))
    except RateLimitUnavailable:
        return _limiter_down(request)
    except RateLimited as limited:
        response = render(request, "signin/rate_limited.html", _page_context(
            request, email=email, retry_minutes=max(1, (limited.retry_after + 59) // 60)),
            status=429)
        response["Retry-After"] = str(limited.retry_after)
        return response
    request.session[PENDING_KEY] = {"email": requested.email, "id": requested.sign_in_id,
                                    "requested_at": now().timestamp(),
                                    "expires_at": requested.expires_at_ts}
    response = redirect("signin:check_inbox")
    _set_binding(response, binding)
    return response


def _limiter_down(request: HttpRequest, what: str = "send a link") -> HttpResponse:
    # Fail closed, calmly: without working counters the door would be unguarded.
    return render(request, "core/error.html", {
        "title": "Email sign-in is having trouble",
        "message": f"We could not {what} just now. Please try again in a few "
                   "minutes, or sign in with Google or Microsoft if your company uses "
                   "them."}, status=503)


def _check_inbox_page(request: HttpRequest, pending: dict[str, Any], *, status: int = 200,
                      code_error: str = "") -> HttpResponse:
    return render(request, "signin/check_inbox.html", _page_context(
        request, email=pending["email"],
        expires_at=datetime.fromtimestamp(pending["expires_at"], tz=UTC),
        minutes=settings.MAGIC_LINK_TTL_SECONDS // 60,
        cooldown=_cooldown_left(request), code_error=code_error), status=status)


@never_cache
def check_inbox(request: HttpRequest) -> HttpResponse:
    pending = request.session.get(PENDING_KEY)
    if not pending:
        return redirect("signin:start")
    return _check_inbox_page(request, pending)


WRONG_CODE = "That code is not right. Check the code in the newest email and try again."
CODE_LOCKED = "Too many wrong codes. Use the link in the email, or ask for a new one."


def _code_message(problem: CodeProblem) -> str:
    if isinstance(problem, CodeMalformed):
        return "Enter the 6 digits from the email, for example 123 456."
    if isinstance(problem, CodeLocked):
        return CODE_LOCKED
    if isinstance(problem, CodeWrong) and problem.attempts_left is not None:
        tries = "1 try" if problem.attempts_left == 1 else f"{problem.attempts_left} tries"
        return f"{WRONG_CODE} You have {tries} left."
    return WRONG_CODE


@never_cache
@require_POST
def enter_code(request: HttpRequest) -> HttpResponse:
    """The short code from the email, typed into the tab that asked (rule 11)."""
    pending = request.session.get(PENDING_KEY)
    if not pending:
        return redirect("signin:start")
    binding = _binding(request)
    try:
        redeemed = flow.redeem_code(
            sign_in_id=pending.get("id"), code=request.POST.get("code", "")[:100],
            binding=binding, ip=client_ip(request), agent=user_agent(request))
    except RateLimitUnavailable:
        return _limiter_down(request, "check the code")
    except RateLimited as limited:
        minutes = max(1, (limited.retry_after + 59) // 60)
        response = _check_inbox_page(request, pending, status=429, code_error=(
            f"Too many codes were tried from your network. Try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}, or use the link in the email."))
        response["Retry-After"] = str(limited.retry_after)
        return response
    except CodeProblem as problem:
        return _check_inbox_page(request, pending, status=400, code_error=_code_message(problem))
    except LinkProblem as problem:
        return _show_problem(request, problem, binding)
    return _signed_in(request, redeemed)


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # The token is in this page's address: never let it leak to another site (rule 7).
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_http_methods(["GET", "HEAD"])
def open_link(request: HttpRequest, token: str) -> HttpResponse:
    """A link from an email. Loading it consumes nothing unless this browser asked (rule 6).

    Every outcome but the one-click sign-in is a redirect to a page without the token in
    its address, as Django's password reset does: the token cannot leak through history or
    a Referer, and the page's forms post with a normal Origin (under the ``no-referrer``
    policy Chromium sends ``Origin: null``, which CSRF protection rightly refuses).
    """
    ip, agent = client_ip(request), user_agent(request)
    binding = _binding(request)
    try:
        sign_in = flow.find_link(token, ip=ip, agent=agent)
        if request.method == "GET" and flow.is_requesting_browser(sign_in, binding):
            redeemed = flow.redeem(sign_in, ip=ip, agent=agent, confirmed=False)
        else:
            # A scanner, or a person in another browser: ask, with a button that POSTs.
            # No JavaScript auto-submit: scanners run JavaScript too.
            flow.note_opened(sign_in, ip=ip, agent=agent)
            request.session[CONFIRM_KEY] = {"id": sign_in.pk, "hash": sign_in.token_hash}
            return _no_referrer(redirect("signin:confirm"))
    except LinkProblem as problem:
        return _no_referrer(_show_problem(request, problem, binding))
    return _no_referrer(_signed_in(request, redeemed))


def _show_problem(request: HttpRequest, problem: LinkProblem, binding: str) -> HttpResponse:
    prefill = flow.holds_binding(binding, problem.binding_hash)
    request.session[PROBLEM_KEY] = {"kind": problem.kind, "status": problem.status,
                                    "email": problem.email if prefill else ""}
    return redirect("signin:link_problem")


def _signed_in(request: HttpRequest, redeemed: flow.Redeemed) -> HttpResponse:
    finish_sign_in(request, redeemed.user, redeemed.method, event=Tag.LINK_REDEEMED,
                   email=redeemed.sign_in.email, sign_in_request=redeemed.sign_in.pk,
                   same_browser=not redeemed.confirmed)
    for key in (PENDING_KEY, CONFIRM_KEY, PROBLEM_KEY):
        request.session.pop(key, None)
    return redirect(redeemed.next_url)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest) -> HttpResponse:
    """"Continue as alice@…": the other-browser step; only the POST consumes the link."""
    opened = request.session.get(CONFIRM_KEY)
    if not opened:
        return redirect("signin:start")
    ip, agent = client_ip(request), user_agent(request)
    try:
        sign_in = flow.find_opened(opened["id"], opened["hash"], ip=ip, agent=agent)
        if request.method == "POST":
            return _signed_in(request, flow.redeem(sign_in, ip=ip, agent=agent,
                                                   confirmed=True))
    except LinkProblem as problem:
        request.session.pop(CONFIRM_KEY, None)
        return _show_problem(request, problem, _binding(request))
    return render(request, "signin/confirm.html", {
        "sign_in": sign_in, "requested_from": describe_agent(sign_in.user_agent)})


@never_cache
def link_problem(request: HttpRequest) -> HttpResponse:
    """Say plainly why a link did not work, and offer a fresh one (rule 8)."""
    problem = request.session.get(PROBLEM_KEY)
    if not problem:
        return redirect("signin:start")
    return render(request, "signin/link_problem.html", _page_context(
        request, kind=problem["kind"], email=problem["email"]), status=problem["status"])
