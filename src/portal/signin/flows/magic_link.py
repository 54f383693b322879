"""The "Email me a sign-in link" journey: ask → (worker) email → open → confirm → signed in.

Every step is a function here; views only read the request, call one of them and turn the
result or the ``portal.signin.errors`` error into a response. None returns an HTTP
response, so tests (and a JSON API) call the journey directly. The rules are numbered as in
docs/security.md ("Email sign-in links").

- ``request_link``   the form: record a request, queue its email (rules 1, 4, 9).
- ``pending``        what the asking browser's "Check your inbox" page shows.
- ``open_link``      a click on the link: one-click sign-in in the asking browser, a
                     confirmation step anywhere else (rule 6).
- ``opened_request`` / ``confirm_link``  the confirmation page and its button.
- ``redeem_code``    the six-digit code typed into the asking tab (rule 11).
All three ways of using a link end in ``_redeem``, which consumes the request and calls
``finish_sign_in`` in one transaction.

The journey's state lives in two places on purpose. The asking browser's server-side
session holds what its "Check your inbox" page needs (a POST made it, and POSTs are
rate-limited). A browser that merely opens a link gets a signed, short-lived cookie (the
"ticket") instead of a session: mail scanners open every link, and each of their visits
must not leave a row behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest

from portal.accounts.services import clean_email, eligibility, join_on_sign_in
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core import ratelimit
from portal.core.clock import now
from portal.core.http import client_ip, safe_next, user_agent
from portal.mail.outbox import enqueue
from portal.signin import devices, tokens
from portal.signin.errors import (
    AccountCannotSignIn,
    CodeLocked,
    CodeMalformed,
    CodeWrong,
    LinkAlreadyUsed,
    LinkExpired,
    LinkProblem,
    LinkRevoked,
    LinkSuperseded,
    LinkUnknown,
    RateLimited,
    ResendTooSoon,
)
from portal.signin.flows.finish import finish_sign_in
from portal.signin.models import SignInRequest

RENDERER = "signin.link"
# A link with less life left than this is not sent at all: it would arrive dead (rule 5).
MIN_LIFE_ON_SEND = timedelta(seconds=60)
# Tries of one short code (rule 11): five guesses at one in a million each.
MAX_CODE_ATTEMPTS = 5
# The asking browser's session: which request its "Check your inbox" page is about.
PENDING_KEY = "signin_pending"
# The signed cookie a browser gets when it opens a link it did not ask for (see module doc).
TICKET_SALT = "portal.signin.flows.magic_link.ticket"

_AUDIT_TAGS = {LinkAlreadyUsed: Tag.LINK_REUSED, LinkRevoked: Tag.LINK_REVOKED_USE,
               LinkSuperseded: Tag.LINK_SUPERSEDED_USE, LinkExpired: Tag.LINK_EXPIRED_USE}


@dataclass(frozen=True)
class Requested:
    """A recorded request. ``binding`` is this browser's binding, to be (re)set as a cookie."""

    email: str
    expires_at: datetime
    binding: str


@dataclass(frozen=True)
class Pending:
    """What the asking browser's "Check your inbox" page knows."""

    email: str
    sign_in_id: int
    requested_at: datetime
    expires_at: datetime
    cooldown_left: int  # seconds until "Send another link" works again


@dataclass(frozen=True)
class SignedIn:
    """A finished sign-in: the session is started; go to ``next_url``."""

    email: str
    next_url: str


@dataclass(frozen=True)
class AwaitingConfirmation:
    """Another browser (or a mail scanner) opened the link: ask before using it (rule 6).

    ``ticket`` goes into a short-lived cookie; the confirmation page reads it back.
    """

    ticket: str


# --- Asking ------------------------------------------------------------------------------

def pending(request: HttpRequest) -> Pending | None:
    """Return the request this browser is waiting for, or None if it asked for nothing."""
    raw = request.session.get(PENDING_KEY)
    if not isinstance(raw, dict):
        return None
    requested_at = datetime.fromtimestamp(raw["requested_at"], tz=UTC)
    waited = (now() - requested_at).total_seconds()
    cooldown = max(0, int(settings.SIGNIN_RESEND_COOLDOWN_SECONDS - waited + 0.999))
    return Pending(email=raw["email"], sign_in_id=raw["id"], requested_at=requested_at,
                   expires_at=datetime.fromtimestamp(raw["expires_at"], tz=UTC),
                   cooldown_left=cooldown)


def request_link(request: HttpRequest, *, email: str, next_url: str = "/") -> Requested:
    """Record a request for a sign-in link and queue its email (rule 1).

    Deliberately looks nobody up: whether ``email`` belongs to anyone is decided by the
    worker, so this does the same work, in the same time, for every address.
    Raises ``InvalidEmail`` for text that is not an address, ``ResendTooSoon`` when this
    browser asked for the same address within the cool-down, ``RateLimited`` past a limit.
    """
    address = clean_email(email)
    ip, agent = client_ip(request), user_agent(request)
    waiting = pending(request)
    if waiting is not None and waiting.email == address and waiting.cooldown_left:
        # "Send another link" pressed again too soon: nothing is sent, and the page says so.
        raise ResendTooSoon(waiting.cooldown_left)
    decision = ratelimit.check_all(_request_limits(request, address, ip))
    if not decision.allowed:
        # A flood is refused without spending anything; its audit rows are bounded too, per
        # address, per client address and overall, or the flood would fill the trail.
        limits = settings.SIGNIN_RATE_LIMITS
        if _within_audit_budget([("signin-refusal-audit", address, limits["refusal_audit"]),
                                 ("signin-refusal-audit-ip", ip or "unknown",
                                  limits["refusal_audit"]),
                                 ("signin-refusal-audit-all", "all",
                                  limits["refusal_audit_global"])]):
            record_event(Tag.LINK_RATE_LIMITED, email=address, ip=ip, agent=agent,
                         reason="rate_limited", retry_after=decision.retry_after)
        raise RateLimited(decision.retry_after)
    binding = tokens.clean_binding(request.COOKIES.get(settings.SIGNIN_BINDING_COOKIE)) \
        or tokens.generate_binding()
    moment = now()
    expires_at = moment + timedelta(seconds=settings.MAGIC_LINK_TTL_SECONDS)
    with transaction.atomic():
        # Only the latest email works (rule 4): a queued older one is never sent.
        SignInRequest.objects.supersede_open(address, moment)
        sign_in = SignInRequest.objects.create(
            email=address, created_at=moment, expires_at=expires_at,
            binding_hash=tokens.hash_binding(binding), next_url=safe_next(next_url),
            ip=ip or None, user_agent=agent)
        sign_in.message = enqueue(
            to=address, kind="signin_link", renderer=RENDERER,
            payload={"sign_in_request": sign_in.pk},
            not_after=expires_at - MIN_LIFE_ON_SEND)
        sign_in.save(update_fields=["message"])
        record_event(Tag.LINK_REQUESTED, email=address, ip=ip, agent=agent,
                     sign_in_request=sign_in.pk)
    request.session[PENDING_KEY] = {"email": address, "id": sign_in.pk,
                                    "requested_at": moment.timestamp(),
                                    "expires_at": expires_at.timestamp()}
    return Requested(address, expires_at, binding)


def _request_limits(request: HttpRequest, address: str, ip: str) -> list[tuple[str, str, str]]:
    """Say which limits a request for ``address`` counts against (rule 9).

    A browser that has signed in as ``address`` before carries a signed device cookie
    saying so: it gets an allowance of its own, so a stranger who spends the address's
    allowance (or the office's shared IP allowance) cannot lock the owner out.
    """
    limits = settings.SIGNIN_RATE_LIMITS
    overall = ("signin-all", "all", limits["global"])
    device = devices.vouched_device(request, address)
    if device:
        return [("signin-device", f"{device}:{address}", limits["device"]), overall]
    return [("signin-address", address, limits["address"]),
            ("signin-ip", ip or "unknown", limits["ip"]), overall]


# --- Opening the link --------------------------------------------------------------------

def open_link(request: HttpRequest, token: str, *, safe_method: bool = True,
              one_click: bool = True) -> SignedIn | AwaitingConfirmation:
    """Handle a click on a link; consume it only in the browser that asked (rule 6).

    Mail scanners fetch links before people do, so loading a link consumes nothing unless
    the request carries the binding cookie of the browser that asked for it, and even then
    only on a GET (``safe_method`` is False for HEAD: nothing a prefetcher sends may sign
    in). Everyone else gets a ticket for the confirmation page, whose button POSTs.
    ``one_click`` False turns the one-click path off (a caller that wants a confirmation
    step everywhere). Raises a ``LinkProblem``.
    """
    ip, agent = client_ip(request), user_agent(request)
    sign_in = _find(token, ip=ip, agent=agent)
    binding = tokens.clean_binding(request.COOKIES.get(settings.SIGNIN_BINDING_COOKIE))
    if safe_method and one_click and tokens.holds_binding(binding, sign_in.binding_hash):
        return _redeem(request, sign_in, method="email", confirmed=False)
    first = SignInRequest.objects.filter(pk=sign_in.pk, opened_at__isnull=True).update(
        opened_at=now())
    _audit_anonymous(Tag.LINK_OPENED, ip=ip, agent=agent, always=bool(first),
                     email=sign_in.email, user=sign_in.user, sign_in_request=sign_in.pk)
    ticket = signing.dumps({"id": sign_in.pk, "hash": sign_in.token_hash}, salt=TICKET_SALT)
    return AwaitingConfirmation(ticket)


def opened_request(request: HttpRequest, ticket: str) -> SignInRequest:
    """Return the still-usable request behind a confirmation ticket, or raise why not."""
    ip, agent = client_ip(request), user_agent(request)
    try:
        data: dict[str, Any] = signing.loads(ticket, salt=TICKET_SALT,
                                             max_age=settings.MAGIC_LINK_TTL_SECONDS)
        pk, token_hash = int(data["id"]), str(data["hash"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        _audit_anonymous(Tag.LINK_UNKNOWN, ip=ip, agent=agent, reason="bad_ticket")
        raise LinkUnknown() from None
    # Matched by hash too: if the email was sent again since, that secret no longer exists.
    sign_in = SignInRequest.objects.select_related("user").filter(
        pk=pk, token_hash=token_hash).exclude(token_hash="").first()
    return _usable(sign_in, ip=ip, agent=agent)


def confirm_link(request: HttpRequest, ticket: str) -> SignedIn:
    """"Continue as alice@…": the other browser's button. Consumes the link (rule 6)."""
    return _redeem(request, opened_request(request, ticket), method="email", confirmed=True)


# --- The short code ----------------------------------------------------------------------

def redeem_code(request: HttpRequest, code: str) -> SignedIn:
    """Sign in the browser that asked, with the short code from its email (rule 11).

    Only the asking browser can use a code: the request comes from its session and its
    binding cookie must match. A request without a code (the address may not sign in, or
    the email has not left yet) answers exactly as a wrong code does, so a code reveals
    nothing about who has an account. Tries are limited per request (five), per address
    across requests (a new request never restores them), per client address and overall.
    The code then consumes the request through ``_redeem``: single use, expiry, replaced
    and revoked apply to link and code alike, since they are one sign-in.
    Raises ``CodeMalformed``, ``CodeWrong``, ``CodeLocked``, ``RateLimited`` or a
    ``LinkProblem``.
    """
    ip, agent = client_ip(request), user_agent(request)
    digits = tokens.clean_code(code)
    if digits is None:
        raise CodeMalformed()  # a typing slip costs no try
    waiting = pending(request)
    sign_in = (SignInRequest.objects.select_related("user").filter(
        pk=waiting.sign_in_id).first() if waiting else None)
    binding = tokens.clean_binding(request.COOKIES.get(settings.SIGNIN_BINDING_COOKIE))
    limits = settings.SIGNIN_RATE_LIMITS
    counted = [("signin-code-ip", ip or "unknown", limits["code_ip"]),
               ("signin-code-all", "all", limits["code_global"])]
    if sign_in is not None:
        counted.append(("signin-code-address", sign_in.email, limits["code_address"]))
    decision = ratelimit.check_all(counted)
    if not decision.allowed:
        record_event(Tag.LINK_RATE_LIMITED, email=sign_in.email if sign_in else "", ip=ip,
                     agent=agent, reason="code_rate_limited",
                     retry_after=decision.retry_after)
        raise RateLimited(decision.retry_after)
    if sign_in is None or not tokens.holds_binding(binding, sign_in.binding_hash):
        # Another browser must not spend the asker's tries: nothing is counted on the row.
        record_event(Tag.LINK_CODE_FAILED, email=sign_in.email if sign_in else "", ip=ip,
                     agent=agent, reason="not_requesting_browser",
                     sign_in_request=sign_in.pk if sign_in else None)
        raise CodeWrong(None)
    # One conditional UPDATE counts the try: two concurrent guesses cannot both read
    # "4 so far" and get a sixth try between them.
    if SignInRequest.objects.filter(pk=sign_in.pk, code_attempts__lt=MAX_CODE_ATTEMPTS).update(
            code_attempts=F("code_attempts") + 1) != 1:
        record_event(Tag.LINK_CODE_FAILED, email=sign_in.email, user=sign_in.user, ip=ip,
                     agent=agent, reason="too_many_attempts", sign_in_request=sign_in.pk)
        raise CodeLocked()
    sign_in.refresh_from_db(fields=["code_attempts", "code_hmac", "token_hash"])
    if not tokens.same_code(sign_in.pk, digits, sign_in.code_hmac):
        left = MAX_CODE_ATTEMPTS - sign_in.code_attempts
        record_event(Tag.LINK_CODE_FAILED, email=sign_in.email, user=sign_in.user, ip=ip,
                     agent=agent, reason="wrong_code", attempts_left=left,
                     sign_in_request=sign_in.pk)
        raise CodeLocked() if left <= 0 else CodeWrong(left)
    problem = sign_in.problem()
    if problem is not None:
        raise _refuse(sign_in, problem, ip=ip, agent=agent)
    return _redeem(request, sign_in, method="email_code", confirmed=False)


# --- Shared steps ------------------------------------------------------------------------

def _find(token: str, *, ip: str, agent: str) -> SignInRequest:
    """Return the open request behind ``token`` or raise the ``LinkProblem`` it has."""
    sign_in = None
    if tokens.looks_like_token(token):
        sign_in = SignInRequest.objects.select_related("user").filter(
            token_hash=tokens.hash_token(token)).first()
    return _usable(sign_in, ip=ip, agent=agent)


def _usable(sign_in: SignInRequest | None, *, ip: str, agent: str) -> SignInRequest:
    if sign_in is None:
        _audit_anonymous(Tag.LINK_UNKNOWN, ip=ip, agent=agent, reason="unknown")
        raise LinkUnknown()
    problem = sign_in.problem()
    if problem is not None:
        raise _refuse(sign_in, problem, ip=ip, agent=agent, anonymous=True)
    return sign_in


def _refuse(sign_in: SignInRequest, problem: LinkProblem, *, ip: str, agent: str,
            anonymous: bool = False) -> LinkProblem:
    """Audit why ``sign_in`` was refused and return the error to raise."""
    tag = _AUDIT_TAGS.get(type(problem), Tag.LINK_UNKNOWN)
    fields: dict[str, Any] = {"email": sign_in.email, "user": sign_in.user,
                              "reason": problem.kind, "sign_in_request": sign_in.pk}
    if anonymous:
        _audit_anonymous(tag, ip=ip, agent=agent, **fields)
    else:
        record_event(tag, ip=ip, agent=agent, **fields)
    return problem


def _audit_anonymous(tag: Tag, *, ip: str, agent: str, always: bool = False,
                     **fields: Any) -> None:
    """Audit something a cookie-less GET caused, within a per-IP budget.

    Anyone can load any link address as often as they like; without a budget each load
    would be a row. The first loads per client address are recorded, the rest are
    counted by the limiter only. ``always`` records regardless (the first opening of a
    real link: one row per link, however many scanners follow).
    """
    if always or _within_audit_budget(
            [("signin-link-audit", ip or "unknown", settings.SIGNIN_RATE_LIMITS["link_audit_ip"])]):
        record_event(tag, ip=ip, agent=agent, **fields)


def _within_audit_budget(budgets: list[tuple[str, str, str]]) -> bool:
    """Say whether one more audit row of a refusal fits ``budgets`` (and count it if so)."""
    try:
        return ratelimit.check_all(budgets).allowed
    except ratelimit.RateLimitUnavailable:
        return True  # the record matters more than the bound while Redis is down


def _redeem(request: HttpRequest, sign_in: SignInRequest, *, method: str,
            confirmed: bool) -> SignedIn:
    """Consume ``sign_in`` and start the session, together or not at all (rule 4).

    Consumption is one conditional UPDATE: of two simultaneous clicks, on any number of
    processes, exactly one sees a row updated; the other is told the link was used.
    Eligibility is checked again: the person may have been disabled since the email left.
    """
    ip, agent = client_ip(request), user_agent(request)
    verdict = eligibility(sign_in.email, "email")
    if not verdict.allowed:
        record_event(Tag.LINK_DECLINED, email=sign_in.email, user=verdict.user,
                     organization=verdict.organization, ip=ip, agent=agent,
                     reason=verdict.reason, sign_in_request=sign_in.pk)
        raise AccountCannotSignIn(sign_in.email, sign_in.binding_hash)
    refusal: LinkProblem | None = None
    with transaction.atomic():
        moment = now()
        won = SignInRequest.objects.open(moment).filter(
            pk=sign_in.pk, token_hash=sign_in.token_hash,
        ).update(consumed_at=moment, consumed_ip=ip or None, consumed_user_agent=agent)
        if won != 1:
            sign_in.refresh_from_db()
            refusal = _refuse(sign_in, sign_in.problem(moment) or LinkAlreadyUsed(
                sign_in.email, sign_in.binding_hash), ip=ip, agent=agent)
        else:
            user = verdict.user
            if user is None:  # auto-join: a first sign-in from a verified domain makes a member
                assert verdict.organization is not None
                user = join_on_sign_in(sign_in.email, verdict.organization)
                SignInRequest.objects.filter(pk=sign_in.pk).update(user=user)
            if confirmed:
                record_event(Tag.LINK_CONFIRMED, email=sign_in.email, user=user, ip=ip,
                             agent=agent, sign_in_request=sign_in.pk)
            finish_sign_in(request, user, method, event=Tag.LINK_REDEEMED,
                           email=sign_in.email, sign_in_request=sign_in.pk,
                           same_browser=not confirmed)
    if refusal is not None:
        raise refusal  # raised outside the block, so the audit row of the refusal is kept
    request.session.pop(PENDING_KEY, None)
    return SignedIn(sign_in.email, safe_next(sign_in.next_url))
