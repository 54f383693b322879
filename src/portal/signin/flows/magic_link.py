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
- ``approve`` / ``refuse``  the other device's "Sign in on the device that asked" (with the
                     number shown on the asking tab) and "This wasn't me" (rule 11).
- ``waiting_status`` / ``claim_approval``  the asking tab's view of that, and its
                     "continue" once approved.
All four ways of using a link (one click, confirm, code, approval) end in ``_redeem``,
which consumes the request and calls ``finish_sign_in`` in one transaction.

One state machine covers them: a request is waiting, then maybe approved, then used; or it
is stopped (refused), replaced, revoked or expired on the way. ``SignInRequest.objects.open``
is the one filter every use goes through, so single use, expiry, a newer request and a
sign-in end the link, the code and an approval alike. An approval reserves the request for
the browser that asked: no other browser can use that link afterwards.

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
from django.utils.crypto import constant_time_compare

from portal.accounts.services import clean_email, eligibility, join_on_sign_in
from portal.audit.services import event as audit_event
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core import ratelimit
from portal.core.clock import now
from portal.core.http import client_ip, describe_agent, safe_next, user_agent
from portal.mail.outbox import enqueue
from portal.signin import devices, tokens
from portal.signin.errors import (
    AccountCannotSignIn,
    ApprovalLocked,
    CodeLocked,
    CodeMalformed,
    CodeWrong,
    LinkAlreadyUsed,
    LinkExpired,
    LinkProblem,
    LinkRefused,
    LinkRevoked,
    LinkSuperseded,
    LinkUnknown,
    NotApproved,
    NumberMalformed,
    NumberWrong,
    RateLimited,
    ResendTooSoon,
    SameBrowserOnly,
)
from portal.signin.flows.finish import finish_sign_in
from portal.signin.models import BY_ID, BY_TOKEN_HASH, SignInRequest, SignInRequestQuerySet

RENDERER = "signin.link"
# A link with less life left than this is not sent at all: it would arrive dead (rule 5).
MIN_LIFE_ON_SEND = timedelta(seconds=60)
# Tries of one short code (rule 11): five guesses at one in a million each.
MAX_CODE_ATTEMPTS = 5
# Tries of the approval number (rule 11): a person who misreads it gets a second and third
# look; someone who never saw the asking screen gets three chances in a hundred, then the
# request is dead.
MAX_APPROVAL_ATTEMPTS = 3
# How "Your sessions" and the audit name a sign-in approved from another device.
APPROVAL_METHOD = "email_approval"
# What the asking tab's status says before the request ends (other states: LinkProblem kinds).
WAITING, APPROVED = "waiting", "approved"
# The asking browser's session: which request its "Check your inbox" page is about.
PENDING_KEY = "signin_pending"
# The signed cookie a browser gets when it opens a link it did not ask for (see module doc).
TICKET_SALT = "portal.signin.flows.magic_link.ticket"

_AUDIT_TAGS = {LinkAlreadyUsed: Tag.LINK_REUSED, LinkRevoked: Tag.LINK_REVOKED_USE,
               LinkSuperseded: Tag.LINK_SUPERSEDED_USE, LinkExpired: Tag.LINK_EXPIRED_USE,
               LinkRefused: Tag.LINK_REFUSED_USE, ApprovalLocked: Tag.LINK_REFUSED_USE}
# What the asking tab's status needs of its request: exactly what ``problem`` reads.
_STATUS_FIELDS = ("email", "binding_hash", "expires_at", "consumed_at", "refused_at",
                  "refusal", "approved_at", "revoked_at", "superseded_at", "approval_number")


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
    life_left: int  # seconds until the link (and its code, and an approval) expires


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


@dataclass(frozen=True)
class Confirmation:
    """What the other device's page offers for ``sign_in``.

    ``same_browser_only`` (strict mode): only approval and "This wasn't me", never "Sign in
    on this device".
    """

    sign_in: SignInRequest
    same_browser_only: bool


@dataclass(frozen=True)
class Approved:
    """The other device approved the sign-in; the browser that asked signs in next."""

    email: str
    requested_from: str  # "Chrome on Windows"


@dataclass(frozen=True)
class WaitingStatus:
    """What the asking tab shows: ``state`` and, while it waits, the approval number.

    ``state`` is ``WAITING``, ``APPROVED`` or the ``LinkProblem.kind`` that ended the
    request (``refused``, ``approval_locked``, ``expired``, ``used``, ``superseded``,
    ``revoked``).
    """

    state: str
    number: str

    @property
    def final(self) -> bool:
        """True once nothing more can happen to the request: the tab stops asking."""
        return self.state not in (WAITING, APPROVED)


# --- Asking ------------------------------------------------------------------------------

def pending(request: HttpRequest) -> Pending | None:
    """Return the request this browser is waiting for, or None if it asked for nothing."""
    raw = request.session.get(PENDING_KEY)
    if not isinstance(raw, dict):
        return None
    requested_at = datetime.fromtimestamp(raw["requested_at"], tz=UTC)
    waited = (now() - requested_at).total_seconds()
    cooldown = max(0, int(settings.SIGNIN_RESEND_COOLDOWN_SECONDS - waited + 0.999))
    expires_at = datetime.fromtimestamp(raw["expires_at"], tz=UTC)
    return Pending(email=raw["email"], sign_in_id=raw["id"], requested_at=requested_at,
                   expires_at=expires_at, cooldown_left=cooldown,
                   life_left=max(0, int((expires_at - now()).total_seconds())))


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
                         reason="rate_limited", retry_after=decision.retry_after,
                         limit=decision.limit)
        raise RateLimited(decision.retry_after)
    binding = tokens.clean_binding(request.COOKIES.get(settings.SIGNIN_BINDING_COOKIE)) \
        or tokens.generate_binding()
    moment = now()
    expires_at = moment + timedelta(seconds=settings.MAGIC_LINK_TTL_SECONDS)
    with transaction.atomic():
        # Only the latest email works (rule 4): a queued older one is never sent.
        SignInRequest.objects.supersede_open(address, moment)
        # The message first, so the request is written once, naming it; the renderer finds
        # the request by its message (``link_email``).
        message = enqueue(to=address, kind="signin_link", renderer=RENDERER, payload={},
                          not_after=expires_at - MIN_LIFE_ON_SEND)
        sign_in = SignInRequest.objects.create(
            email=address, created_at=moment, expires_at=expires_at,
            binding_hash=tokens.hash_binding(binding), next_url=safe_next(next_url),
            ip=ip or None, user_agent=agent, message=message,
            # Every request gets a number, whoever the address is (rule 1).
            approval_number=tokens.generate_number())
        record_event(Tag.LINK_REQUESTED, email=address, ip=ip, agent=agent,
                     sign_in_request=sign_in.pk)
        request.session[PENDING_KEY] = {"email": address, "id": sign_in.pk,
                                        "requested_at": moment.timestamp(),
                                        "expires_at": expires_at.timestamp()}
        # Saved in this transaction; unchanged, the middleware does not write it again.
        request.session.save()
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
    asker = tokens.holds_binding(binding, sign_in.binding_hash)
    sign_in = _usable(sign_in, ip=ip, agent=agent, asker=asker)
    if safe_method and one_click and asker:
        return _redeem(request, sign_in, method="email", asker=True)
    fields: dict[str, Any] = {"email": sign_in.email, "user": sign_in.user,
                              "sign_in_request": sign_in.pk}
    first = False
    if sign_in.opened_at is None:
        # The first opening of a link is always recorded (one row per link, however many
        # scanners follow), in one transaction with the mark that makes it the first.
        with transaction.atomic():
            first = SignInRequest.objects.filter(
                pk=sign_in.pk, opened_at__isnull=True).update(opened_at=now()) == 1
            if first:
                record_event(Tag.LINK_OPENED, ip=ip, agent=agent, **fields)
    if not first:
        _audit_anonymous(Tag.LINK_OPENED, ip=ip, agent=agent, **fields)
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
    sign_in = BY_ID.first(pk)
    # Matched by hash too: if the email was sent again since, that secret no longer exists.
    if sign_in is not None and not (sign_in.token_hash and constant_time_compare(
            sign_in.token_hash, token_hash)):
        sign_in = None
    return _usable(sign_in, ip=ip, agent=agent)


def confirmation(request: HttpRequest, ticket: str) -> Confirmation:
    """Return what the other device's page offers for the request behind ``ticket``."""
    sign_in = opened_request(request, ticket)
    return Confirmation(sign_in, same_browser_only(sign_in))


def same_browser_only(sign_in: SignInRequest) -> bool:
    """Say whether strict mode keeps this sign-in on the browser that asked (rule 11).

    The organization is the one the address would sign in to: the person's own, or, for a
    first sign-in by auto-join, the one owning the verified domain.
    """
    organization = eligibility(sign_in.email, "email", known=sign_in.user).organization
    return bool(organization is not None and organization.strict_same_browser)


def confirm_link(request: HttpRequest, ticket: str) -> SignedIn:
    """"Sign in on this device": the other browser's button. Consumes the link (rule 6).

    Raises ``SameBrowserOnly`` in strict mode (the request stays as it was: the page can
    still approve or refuse it) or a ``LinkProblem``.
    """
    sign_in = opened_request(request, ticket)
    if same_browser_only(sign_in):
        record_event(Tag.LINK_SAME_BROWSER_ONLY, email=sign_in.email, user=sign_in.user,
                     ip=client_ip(request), agent=user_agent(request),
                     reason="strict_same_browser", sign_in_request=sign_in.pk)
        raise SameBrowserOnly()
    return _redeem(request, sign_in, method="email", asker=False)


# --- Approval from another device (rule 11, second half) ----------------------------------

def approve(request: HttpRequest, ticket: str, number: str) -> Approved:
    """"Sign in on the device that asked": approve it with the number shown there.

    The person holding the link proves they can also see the asking screen by typing its
    two-digit number. Someone who asked for another person's link cannot get it approved
    unless that person reads the number off the asker's own screen: an email arriving
    unasked, with nothing to type, cannot be approved by a tap. Tries are counted by one
    conditional UPDATE (three per request); the third wrong number stops the request for
    good. Approval does not sign anyone in: it reserves the request for the browser that
    asked, which signs in through ``claim_approval``.
    Raises ``NumberMalformed`` (costs no try), ``NumberWrong``, ``ApprovalLocked`` or a
    ``LinkProblem``.
    """
    ip, agent = client_ip(request), user_agent(request)
    typed = tokens.clean_number(number)
    if typed is None:
        raise NumberMalformed()
    sign_in = opened_request(request, ticket)
    # Counted before it is compared (only while the request is open and unapproved).
    tries = _count_try(SignInRequest.objects.open().unapproved().filter(pk=sign_in.pk),
                       "approval_attempts", MAX_APPROVAL_ATTEMPTS)
    if tries is None:
        sign_in.refresh_from_db()
        raise _refuse(sign_in, sign_in.problem() or ApprovalLocked(
            sign_in.email, sign_in.binding_hash), ip=ip, agent=agent)
    fields: dict[str, Any] = {"email": sign_in.email, "user": sign_in.user, "ip": ip,
                              "agent": agent, "sign_in_request": sign_in.pk}
    if not tokens.same_number(typed, sign_in.approval_number):
        left = MAX_APPROVAL_ATTEMPTS - tries
        if left > 0:
            record_event(Tag.LINK_APPROVAL_FAILED, reason="wrong_number", attempts_left=left,
                         **fields)
            raise NumberWrong(left)
        with transaction.atomic():
            if SignInRequest.objects.unsettled().filter(pk=sign_in.pk).update(
                    refused_at=now(), refusal=SignInRequest.Refusal.WRONG_NUMBERS):
                record_event(Tag.LINK_REFUSED, reason="wrong_numbers", **fields)
        raise ApprovalLocked(sign_in.email, sign_in.binding_hash)
    moment = now()
    with transaction.atomic():
        won = SignInRequest.objects.open(moment).unapproved().filter(pk=sign_in.pk).update(
            approved_at=moment, approved_ip=ip or None, approved_user_agent=agent)
        if won == 1:
            record_event(Tag.LINK_APPROVED, **fields)
    if won != 1:
        sign_in.refresh_from_db()
        raise _refuse(sign_in, sign_in.problem(moment) or LinkAlreadyUsed(
            sign_in.email, sign_in.binding_hash), ip=ip, agent=agent)
    return Approved(sign_in.email, describe_agent(sign_in.user_agent))


def refuse(request: HttpRequest, ticket: str) -> None:
    """"This wasn't me": stop the request for good; the asking tab is told (rule 11).

    Link, code and approval all die with it, since they go through the same ``open``
    filter. Raises a ``LinkProblem`` if the request had already ended.
    """
    ip, agent = client_ip(request), user_agent(request)
    sign_in = opened_request(request, ticket)
    moment = now()
    with transaction.atomic():
        won = SignInRequest.objects.open(moment).unapproved().filter(pk=sign_in.pk).update(
            refused_at=moment, refusal=SignInRequest.Refusal.NOT_ME)
        if won == 1:
            record_event(Tag.LINK_REFUSED, email=sign_in.email, user=sign_in.user, ip=ip,
                         agent=agent, reason="not_me", sign_in_request=sign_in.pk)
    if won != 1:
        sign_in.refresh_from_db()
        raise _refuse(sign_in, sign_in.problem(moment) or LinkAlreadyUsed(
            sign_in.email, sign_in.binding_hash), ip=ip, agent=agent)


def waiting_status(request: HttpRequest, *, polled: bool = False) -> WaitingStatus | None:
    """Return the state of the request this browser waits for, or None if it waits for none.

    The asking tab polls this every couple of seconds, so it reads one row by primary key
    and only the columns the state needs. It never tells anyone but the asking session
    (whose "Check your inbox" page shows the number anyway) the number. ``polled`` (the
    poll itself) counts against a limit per request when the limits live in Redis, where
    counting costs no SQL; in the embedded database a count would be a write per poll,
    more than the one read it guards. Raises ``RateLimited`` past it.
    """
    waiting = pending(request)
    if waiting is None:
        return None
    if polled and settings.CONFIG.redis_url:
        decision = ratelimit.hit("signin-status", str(waiting.sign_in_id),
                                 settings.SIGNIN_RATE_LIMITS["status"])
        if not decision.allowed:
            raise RateLimited(decision.retry_after)
    sign_in = SignInRequest.objects.filter(pk=waiting.sign_in_id).only(*_STATUS_FIELDS).first()
    if sign_in is None:
        return None
    problem = sign_in.problem(asker=True)
    state = problem.kind if problem else APPROVED if sign_in.approved_at else WAITING
    return WaitingStatus(state, sign_in.approval_number)


def claim_approval(request: HttpRequest) -> SignedIn:
    """Sign in the browser that asked, once another device approved its request (rule 11).

    Only that browser can: its session names the request and its binding cookie must
    match, so neither a copied session cookie nor the binding alone is enough. Raises
    ``NotApproved`` (not approved yet, or not the browser that asked) or a ``LinkProblem``.
    """
    ip, agent = client_ip(request), user_agent(request)
    sign_in, here = _asked_here(request)
    if sign_in is None or not here:
        record_event(Tag.LINK_APPROVAL_FAILED, email=sign_in.email if sign_in else "", ip=ip,
                     agent=agent, reason="not_requesting_browser",
                     sign_in_request=sign_in.pk if sign_in else None)
        raise NotApproved()
    problem = sign_in.problem(asker=True)
    if problem is not None:
        raise _refuse(sign_in, problem, ip=ip, agent=agent)
    if sign_in.approved_at is None:
        raise NotApproved()
    return _redeem(request, sign_in, method=APPROVAL_METHOD, asker=True)


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
    sign_in, here = _asked_here(request)
    limits = settings.SIGNIN_RATE_LIMITS
    counted = [("signin-code-ip", ip or "unknown", limits["code_ip"]),
               ("signin-code-all", "all", limits["code_global"])]
    if sign_in is not None:
        counted.append(("signin-code-address", sign_in.email, limits["code_address"]))
    decision = ratelimit.check_all(counted)
    if not decision.allowed:
        record_event(Tag.LINK_RATE_LIMITED, email=sign_in.email if sign_in else "", ip=ip,
                     agent=agent, reason="code_rate_limited",
                     retry_after=decision.retry_after, limit=decision.limit)
        raise RateLimited(decision.retry_after)
    if sign_in is None or not here:
        # Another browser must not spend the asker's tries: nothing is counted on the row.
        record_event(Tag.LINK_CODE_FAILED, email=sign_in.email if sign_in else "", ip=ip,
                     agent=agent, reason="not_requesting_browser",
                     sign_in_request=sign_in.pk if sign_in else None)
        raise CodeWrong(None)
    tries = _count_try(SignInRequest.objects.filter(pk=sign_in.pk), "code_attempts",
                       MAX_CODE_ATTEMPTS)
    if tries is None:
        record_event(Tag.LINK_CODE_FAILED, email=sign_in.email, user=sign_in.user, ip=ip,
                     agent=agent, reason="too_many_attempts", sign_in_request=sign_in.pk)
        raise CodeLocked()
    sign_in.refresh_from_db(fields=["code_hmac", "token_hash"])
    if not tokens.same_code(sign_in.pk, digits, sign_in.code_hmac):
        left = MAX_CODE_ATTEMPTS - tries
        record_event(Tag.LINK_CODE_FAILED, email=sign_in.email, user=sign_in.user, ip=ip,
                     agent=agent, reason="wrong_code", attempts_left=left,
                     sign_in_request=sign_in.pk)
        raise CodeLocked() if left <= 0 else CodeWrong(left)
    problem = sign_in.problem(asker=True)
    if problem is not None:
        raise _refuse(sign_in, problem, ip=ip, agent=agent)
    return _redeem(request, sign_in, method="email_code", asker=True)


# --- Shared steps ------------------------------------------------------------------------

def _find(token: str, *, ip: str, agent: str) -> SignInRequest:
    """Return the request behind ``token`` (usable or not), or raise ``LinkUnknown``."""
    sign_in = None
    if tokens.looks_like_token(token):
        sign_in = BY_TOKEN_HASH.first(tokens.hash_token(token))
    if sign_in is None:
        _audit_anonymous(Tag.LINK_UNKNOWN, ip=ip, agent=agent, reason="unknown")
        raise LinkUnknown()
    return sign_in


def _asked_here(request: HttpRequest) -> tuple[SignInRequest | None, bool]:
    """Return the request this browser's session waits for, and whether this is the
    browser that asked for it (its binding cookie matches; rule 6)."""
    waiting = pending(request)
    sign_in = BY_ID.first(waiting.sign_in_id) if waiting else None
    binding = tokens.clean_binding(request.COOKIES.get(settings.SIGNIN_BINDING_COOKIE))
    return sign_in, sign_in is not None and tokens.holds_binding(binding, sign_in.binding_hash)


def _usable(sign_in: SignInRequest | None, *, ip: str, agent: str,
            asker: bool = False) -> SignInRequest:
    """Return ``sign_in`` if it can still be used, by the asker or not; else raise why."""
    if sign_in is None:
        _audit_anonymous(Tag.LINK_UNKNOWN, ip=ip, agent=agent, reason="unknown")
        raise LinkUnknown()
    problem = sign_in.problem(asker=asker)
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


def _count_try(rows: SignInRequestQuerySet, field: str, limit: int) -> int | None:
    """Count one try on the single row of ``rows``; return this try's number, or None when
    ``limit`` tries were already spent (or the row no longer matches ``rows``).

    One conditional UPDATE counts it: two concurrent guesses cannot both read "two so far"
    and get a try too many between them. The count is read back inside the same
    transaction, while the UPDATE's row lock keeps every other guess waiting, so each
    guess learns its own number (and only the last one can be told "that was the last").
    """
    with transaction.atomic():
        if rows.filter(**{f"{field}__lt": limit}).update(**{field: F(field) + 1}) != 1:
            return None
        return int(rows.values_list(field, flat=True).get())


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
        return ratelimit.check_all(budgets, metered=False).allowed
    except ratelimit.RateLimitUnavailable:
        return True  # the record matters more than the bound while Redis is down


def _redeem(request: HttpRequest, sign_in: SignInRequest, *, method: str,
            asker: bool) -> SignedIn:
    """Consume ``sign_in`` and start the session, together or not at all (rule 4).

    Consumption is one conditional UPDATE: of two simultaneous clicks, on any number of
    processes, exactly one sees a row updated; the other is told the link was used.
    ``asker`` says this is the browser that asked: only it may use an approved request
    (rule 11).
    Eligibility is checked again: the person may have been disabled since the email left.
    """
    ip, agent = client_ip(request), user_agent(request)
    verdict = eligibility(sign_in.email, "email", known=sign_in.user)
    if not verdict.allowed:
        record_event(Tag.LINK_DECLINED, email=sign_in.email, user=verdict.user,
                     organization=verdict.organization, ip=ip, agent=agent,
                     reason=verdict.reason, sign_in_request=sign_in.pk)
        raise AccountCannotSignIn(sign_in.email, sign_in.binding_hash)
    refusal: LinkProblem | None = None
    with transaction.atomic():
        moment = now()
        consumable = SignInRequest.objects.open(moment).filter(
            pk=sign_in.pk, token_hash=sign_in.token_hash)
        if not asker:
            consumable = consumable.unapproved()
        won = consumable.update(consumed_at=moment, consumed_ip=ip or None,
                                consumed_user_agent=agent)
        if won != 1:
            sign_in.refresh_from_db()
            refusal = _refuse(sign_in, sign_in.problem(moment, asker=asker) or LinkAlreadyUsed(
                sign_in.email, sign_in.binding_hash), ip=ip, agent=agent)
        else:
            user = verdict.user
            if user is None:  # auto-join: a first sign-in from a verified domain makes a member
                assert verdict.organization is not None
                user = join_on_sign_in(sign_in.email, verdict.organization)
                SignInRequest.objects.filter(pk=sign_in.pk).update(user=user)
            confirmed = [] if asker else [audit_event(
                Tag.LINK_CONFIRMED, email=sign_in.email, user=user, ip=ip, agent=agent,
                sign_in_request=sign_in.pk)]
            # Gone before finish_sign_in saves the session, so it is saved once.
            request.session.pop(PENDING_KEY, None)
            finish_sign_in(request, user, method, event=Tag.LINK_REDEEMED, also=confirmed,
                           email=sign_in.email, sign_in_request=sign_in.pk,
                           same_browser=asker)
    if refusal is not None:
        raise refusal  # raised outside the block, so the audit row of the refusal is kept
    return SignedIn(sign_in.email, safe_next(sign_in.next_url))
