"""The "Email me a sign-in link" journey: ask → (worker) email → open → confirm → signed in.

Each step is a function that returns a result or raises a ``portal.signin.errors`` error;
none returns an HTTP response, so views stay thin and tests call the journey directly.
The rule numbers refer to docs in ../shared/DESIGN.md ("Magic-link rules").
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F

from portal.accounts.models import User
from portal.accounts.services import clean_email, eligibility, join_on_sign_in
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core import ratelimit
from portal.core.clock import now
from portal.core.http import safe_next
from portal.mail.outbox import enqueue
from portal.signin import tokens
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
)
from portal.signin.models import SignInRequest

RENDERER = "signin.link"
# A link with less life left than this is not sent at all: it would arrive dead (rule 5).
MIN_LIFE_ON_SEND = timedelta(seconds=60)
# Tries of one short code (rule 11): five guesses at one in a million each.
MAX_CODE_ATTEMPTS = 5


def hash_binding(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest() if binding else ""


@dataclass(frozen=True)
class Requested:
    email: str
    expires_at_ts: float
    # Kept in the asking browser's server-side session, for the short code (rule 11).
    sign_in_id: int


def request_link(*, email: str, next_url: str, binding: str, ip: str,
                 agent: str) -> Requested:
    """Record a request for a sign-in link and queue its email (rule 1).

    Deliberately looks nobody up: whether ``email`` belongs to anyone is decided by the
    worker, so this does the same work, in the same time, for every address.
    Raises ``InvalidEmail`` for text that is not an address, ``RateLimited`` past a limit.
    """
    address = clean_email(email)
    limits = settings.SIGNIN_RATE_LIMITS
    decision = ratelimit.check_all([
        ("signin-address", address, limits["address"]),
        ("signin-ip", ip or "unknown", limits["ip"]),
        ("signin-all", "all", limits["global"]),
    ])
    if not decision.allowed:
        record_event(Tag.LINK_RATE_LIMITED, email=address, ip=ip, agent=agent,
                     reason="rate_limited", retry_after=decision.retry_after)
        raise RateLimited(decision.retry_after)
    moment = now()
    expires_at = moment + timedelta(seconds=settings.MAGIC_LINK_TTL_SECONDS)
    with transaction.atomic():
        # A newer request supersedes every older link of this address that is still open
        # (rule 4): only the latest email works, and a queued older one is never sent.
        SignInRequest.objects.filter(
            email=address, consumed_at__isnull=True, superseded_at__isnull=True,
            revoked_at__isnull=True,
        ).update(superseded_at=moment)
        sign_in = SignInRequest.objects.create(
            email=address, created_at=moment, expires_at=expires_at,
            binding_hash=hash_binding(binding), next_url=safe_next(next_url),
            ip=ip or None, user_agent=agent[:400])
        sign_in.message = enqueue(
            to=address, kind="signin_link", renderer=RENDERER,
            payload={"sign_in_request": sign_in.pk},
            not_after=expires_at - MIN_LIFE_ON_SEND)
        sign_in.save(update_fields=["message"])
        record_event(Tag.LINK_REQUESTED, email=address, ip=ip, agent=agent,
                     sign_in_request=sign_in.pk)
    return Requested(address, expires_at.timestamp(), sign_in.pk)


def _problem_for(sign_in: SignInRequest) -> LinkProblem | None:
    """Say why a link cannot be used, or None if it can. Order matters: used beats expired."""
    args = (sign_in.email, sign_in.binding_hash)
    if sign_in.consumed_at is not None:
        return LinkAlreadyUsed(*args)
    if sign_in.revoked_at is not None:
        return LinkRevoked(*args)
    if sign_in.superseded_at is not None:
        return LinkSuperseded(*args)
    if sign_in.expires_at <= now():
        return LinkExpired(*args)
    return None


_AUDIT_TAGS = {LinkAlreadyUsed: Tag.LINK_REUSED, LinkRevoked: Tag.LINK_REVOKED_USE,
               LinkSuperseded: Tag.LINK_SUPERSEDED_USE, LinkExpired: Tag.LINK_EXPIRED_USE}


def _refuse(sign_in: SignInRequest, problem: LinkProblem, ip: str, agent: str) -> LinkProblem:
    record_event(_AUDIT_TAGS.get(type(problem), Tag.LINK_UNKNOWN), email=sign_in.email,
                 user=sign_in.user, ip=ip, agent=agent, reason=problem.kind,
                 sign_in_request=sign_in.pk)
    return problem


def find_link(token: str, *, ip: str = "", agent: str = "") -> SignInRequest:
    """Return the open sign-in request behind ``token`` or raise the ``LinkProblem`` it has."""
    sign_in = None
    if tokens.looks_like_token(token):
        sign_in = SignInRequest.objects.select_related("user").filter(
            token_hash=tokens.hash_token(token)).first()
    return _usable(sign_in, ip, agent)


def _usable(sign_in: SignInRequest | None, ip: str, agent: str) -> SignInRequest:
    """Return ``sign_in`` if it can still sign someone in, else raise (and audit) why not."""
    if sign_in is None:
        record_event(Tag.LINK_UNKNOWN, ip=ip, agent=agent, reason="unknown")
        raise LinkUnknown()
    problem = _problem_for(sign_in)
    if problem is not None:
        raise _refuse(sign_in, problem, ip, agent)
    return sign_in


def is_requesting_browser(sign_in: SignInRequest, binding: str) -> bool:
    """True when this browser holds the binding cookie set when it asked for the link."""
    return holds_binding(binding, sign_in.binding_hash)


def holds_binding(binding: str, binding_hash: str) -> bool:
    return bool(binding) and hmac.compare_digest(hash_binding(binding), binding_hash)


def note_opened(sign_in: SignInRequest, *, ip: str, agent: str) -> None:
    """Record that a link was loaded without being used (a person or a mail scanner)."""
    SignInRequest.objects.filter(pk=sign_in.pk, opened_at__isnull=True).update(opened_at=now())
    record_event(Tag.LINK_OPENED, email=sign_in.email, user=sign_in.user, ip=ip, agent=agent,
                 sign_in_request=sign_in.pk)


@dataclass(frozen=True)
class Redeemed:
    user: User
    next_url: str
    sign_in: SignInRequest
    method: str = "email"
    confirmed: bool = False


def find_opened(pk: int, token_hash: str, *, ip: str = "", agent: str = "") -> SignInRequest:
    """Return the open request a browser proved it held the link of (see ``open_link``)."""
    sign_in = SignInRequest.objects.select_related("user").filter(
        pk=pk, token_hash=token_hash).exclude(token_hash="").first()
    # None when the email was re-sent since: the secret behind that link no longer exists.
    return _usable(sign_in, ip, agent)


def redeem_code(*, sign_in_id: int | None, code: str, binding: str, ip: str,
                agent: str) -> Redeemed:
    """Sign in the browser that asked, with the short code from its email (rule 11).

    Only the asking browser can use a code: ``sign_in_id`` comes from its session and
    ``binding`` must be its binding cookie. A request without a code (the address may not
    sign in, or the email has not left yet) answers exactly as a wrong code does, try
    counting included, so a code reveals nothing about who has an account. The code then
    consumes the request through ``redeem``: single use, expiry, superseded and revoked
    apply to link and code alike, since they are one sign-in.
    Raises ``CodeMalformed``, ``CodeWrong``, ``CodeLocked``, ``RateLimited`` or a
    ``LinkProblem``.
    """
    # Per IP, across every session: the per-request limit cannot stop one client from
    # trying a few codes in each of many sessions of its own.
    decision = ratelimit.hit("signin-code-ip", ip or "unknown",
                             settings.SIGNIN_RATE_LIMITS["code_ip"])
    if not decision.allowed:
        record_event(Tag.LINK_RATE_LIMITED, ip=ip, agent=agent, reason="code_rate_limited",
                     retry_after=decision.retry_after)
        raise RateLimited(decision.retry_after)
    digits = tokens.clean_code(code)
    if digits is None:
        raise CodeMalformed()
    sign_in = (SignInRequest.objects.select_related("user").filter(pk=sign_in_id).first()
               if sign_in_id else None)
    if sign_in is None or not is_requesting_browser(sign_in, binding):
        # Another browser must not spend the asker's tries: nothing is counted on the row.
        record_event(Tag.LINK_CODE_FAILED, email=sign_in.email if sign_in else "", ip=ip,
                     agent=agent, reason="not_requesting_browser",
                     sign_in_request=sign_in.pk if sign_in else None)
        raise CodeWrong(None)
    # One conditional UPDATE counts the try: two concurrent guesses cannot both read
    # "4 so far" and get a sixth try between them.
    counted = SignInRequest.objects.filter(
        pk=sign_in.pk, code_attempts__lt=MAX_CODE_ATTEMPTS,
    ).update(code_attempts=F("code_attempts") + 1)
    if counted != 1:
        record_event(Tag.LINK_CODE_FAILED, email=sign_in.email, user=sign_in.user, ip=ip,
                     agent=agent, reason="too_many_attempts", sign_in_request=sign_in.pk)
        raise CodeLocked()
    sign_in.refresh_from_db(fields=["code_attempts", "code_hmac", "token_hash"])
    if not tokens.same_code(sign_in.pk, digits, sign_in.code_hmac):
        left = MAX_CODE_ATTEMPTS - sign_in.code_attempts
        record_event(Tag.LINK_CODE_FAILED, email=sign_in.email, user=sign_in.user, ip=ip,
                     agent=agent, reason="wrong_code", attempts_left=left,
                     sign_in_request=sign_in.pk)
        if left <= 0:
            raise CodeLocked()
        raise CodeWrong(left)
    problem = _problem_for(sign_in)
    if problem is not None:
        raise _refuse(sign_in, problem, ip, agent)
    return redeem(sign_in, ip=ip, agent=agent, confirmed=False, method="email_code")


def redeem(sign_in: SignInRequest, *, ip: str, agent: str, confirmed: bool,
           method: str = "email") -> Redeemed:
    """Consume ``sign_in`` and return who it signs in (rule 4); the caller starts the session.

    Consumption is one conditional UPDATE: of two simultaneous clicks, on any number of
    processes, exactly one sees a row updated; the other is told the link was used.
    Eligibility is checked again: the person may have been disabled since the email left.
    """
    verdict = eligibility(sign_in.email, "email")
    if not verdict.allowed:
        record_event(Tag.LINK_DECLINED, email=sign_in.email, user=verdict.user,
                     organization=verdict.organization, ip=ip, agent=agent,
                     reason=verdict.reason, sign_in_request=sign_in.pk)
        raise AccountCannotSignIn(sign_in.email, sign_in.binding_hash)
    moment = now()
    refusal: LinkProblem | None = None
    user: User | None = None
    with transaction.atomic():
        won = SignInRequest.objects.filter(
            pk=sign_in.pk, token_hash=sign_in.token_hash, consumed_at__isnull=True,
            revoked_at__isnull=True, superseded_at__isnull=True, expires_at__gt=moment,
        ).update(consumed_at=moment, state=SignInRequest.State.REDEEMED, consumed_ip=ip or None,
                 consumed_user_agent=agent[:400])
        if won != 1:
            sign_in.refresh_from_db()
            refusal = _refuse(sign_in, _problem_for(sign_in) or LinkAlreadyUsed(
                sign_in.email, sign_in.binding_hash), ip, agent)
        else:
            user = verdict.user
            if user is None:  # auto-join: a first sign-in from a verified domain makes a member
                assert verdict.organization is not None
                user = join_on_sign_in(sign_in.email, verdict.organization)
                SignInRequest.objects.filter(pk=sign_in.pk).update(user=user)
            if confirmed:
                record_event(Tag.LINK_CONFIRMED, email=sign_in.email, user=user, ip=ip,
                             agent=agent, sign_in_request=sign_in.pk)
    if refusal is not None:
        raise refusal  # raised outside the block, so the audit row of the refusal is kept
    assert user is not None
    return Redeemed(user, safe_next(sign_in.next_url), sign_in, method, confirmed)
