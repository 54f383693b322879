"""The passkey journeys: add one after signing in, sign in with one, rename, remove.

Like ``portal.signin.flows.magic_link``, each step is a function taking the request and
returning a result or raising a ``portal.passkeys.errors`` error; views only translate.
Each ceremony has two steps: ``begin_*`` issues a challenge into this browser's session
(``challenges``) and returns the options JSON for ``navigator.credentials``; the second
step consumes that challenge and hands the browser's answer to ``ceremonies``, which
verifies it with py_webauthn. A passkey sign-in ends in ``finish_sign_in``, as every way
in does.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from portal.accounts.models import User
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core import ratelimit
from portal.core.clock import now
from portal.core.http import client_ip, safe_next
from portal.passkeys import ceremonies, challenges, notices
from portal.passkeys.errors import (
    PasskeyAccountCannotSignIn,
    PasskeyAlreadyRegistered,
    PasskeyNameMissing,
    PasskeyNeedsRecentSignIn,
    PasskeyNotAllowed,
    PasskeyProblem,
    PasskeyRejected,
    PasskeyUnknown,
)
from portal.passkeys.models import NAME_MAX, Passkey, PasskeyHandle
from portal.signin.errors import RateLimited
from portal.signin.flows.finish import finish_sign_in
from portal.signin.flows.magic_link import SignedIn
from portal.signin.sessions import SESSION_METHOD_KEY, signed_in_recently

METHOD = "passkey"
# Which passkey signed this session in: the admin checks that it still exists.
SESSION_PASSKEY_KEY = "portal_passkey"


def passkeys_of(user: User) -> list[Passkey]:
    return list(Passkey.objects.filter(user=user))


def has_passkey(user: User) -> bool:
    return Passkey.objects.filter(user=user).exists()


# --- The rules other apps ask about ------------------------------------------------------

def session_used_passkey(request: HttpRequest) -> bool:
    """Say whether this browser's session was signed in with a passkey the person still has.

    Owning a passkey is not enough: an email link (or a stolen session cookie of an email
    sign-in) must not open what a passkey guards. The passkey that signed in must still be
    registered, so removing it (or an operator's reset) takes the privilege away at once.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if request.session.get(SESSION_METHOD_KEY) != METHOD:
        return False
    passkey_id = request.session.get(SESSION_PASSKEY_KEY)
    return isinstance(passkey_id, int) and Passkey.objects.filter(
        pk=passkey_id, user=user).exists()


def must_use_passkey(user: User) -> bool:
    """Say whether ``user`` is required to sign in with a passkey for what they can do.

    Staff always (the admin); an organization admin when their organization requires it
    (``Organization.require_passkeys_for_admins``).
    """
    if user.is_staff:
        return True
    membership = getattr(user, "membership", None)
    return bool(membership is not None and membership.role == membership.Role.ADMIN
                and membership.organization.require_passkeys_for_admins)


def recent_minutes() -> int:
    return int(settings.RECENT_SIGN_IN_SECONDS) // 60


def _require_recent(request: HttpRequest) -> None:
    # Adding or removing a passkey changes how the account can be entered, so a session left
    # open on a shared computer must not do it (ASVS 6.3.7): the one recent-sign-in rule.
    if not signed_in_recently(request):
        raise PasskeyNeedsRecentSignIn()


def allowed_by_organization(user: User) -> bool:
    """Say whether ``user``'s organization lets passkeys in (staff have none: always)."""
    org = user.organization
    return org is None or org.allows("passkey")


def may_sign_in(user: User) -> bool:
    """Say whether ``user``'s passkeys may sign them in: an active account that belongs to
    an active organization, or a staff member (who has none)."""
    if not user.is_active:
        return False
    org = user.organization
    return user.is_staff if org is None else org.is_active


# --- Adding a passkey (signed in) --------------------------------------------------------

def begin_registration(request: HttpRequest, user: User) -> str:
    """Return the options for adding a passkey to ``user``, signed in on this browser."""
    _require_recent(request)
    if not allowed_by_organization(user):
        raise PasskeyNotAllowed()
    handle = PasskeyHandle.for_user(user)
    existing = list(Passkey.objects.filter(user=user).values_list("credential_id", flat=True))
    return ceremonies.registration_options(
        challenge=challenges.issue(request, "register"), handle=bytes(handle.handle),
        email=user.email, display_name=user.get_full_name(), existing=existing)


def finish_registration(request: HttpRequest, user: User, raw: str, name: str = "") -> Passkey:
    """Verify the browser's new credential and store it as one of ``user``'s passkeys."""
    try:
        _require_recent(request)
        challenge = challenges.consume(request, "register")
        new = ceremonies.verify_registration(raw, challenge=challenge)
        label = clean_name(name) or f"Passkey {Passkey.objects.filter(user=user).count() + 1}"
        with transaction.atomic():
            if Passkey.objects.filter(credential_id=new.credential_id).exists():
                raise PasskeyAlreadyRegistered()
            passkey = Passkey.objects.create(
                user=user, credential_id=new.credential_id, public_key=new.public_key,
                sign_count=new.sign_count, backup_eligible=new.backup_eligible,
                backup_state=new.backup_state, transports=new.transports, aaguid=new.aaguid,
                name=label, created_at=now())
            record_event(Tag.PASSKEY_REGISTERED, request=request, user=user,
                         passkey=passkey.pk, synced=new.backup_eligible)
            notices.passkey_changed(user, "added", passkey.name)
    except IntegrityError:
        # Two registrations of the same credential raced; the unique index kept one.
        _failed(request, PasskeyAlreadyRegistered(), stage="register", user=user)
        raise PasskeyAlreadyRegistered() from None
    except PasskeyProblem as problem:
        _failed(request, problem, stage="register", user=user)
        raise
    return passkey


# --- Signing in with a passkey -----------------------------------------------------------

def begin_sign_in(request: HttpRequest) -> str:
    """Return the options for signing in with any passkey of this site (discoverable)."""
    return ceremonies.authentication_options(challenge=challenges.issue(request, "signin"))


def sign_in(request: HttpRequest, raw: str, next_url: str = "/") -> SignedIn:
    """Verify a sign-in assertion and sign its owner in on this browser.

    Counted per client address and overall first, so guessing at the endpoint is bounded.
    The challenge is consumed by the attempt whatever its outcome. Raises ``RateLimited``
    or a ``PasskeyProblem``; every refusal leaves an audit row.
    """
    ip = client_ip(request)
    limits = settings.SIGNIN_RATE_LIMITS
    decision = ratelimit.check_all([
        ("passkey-ip", ratelimit.ip_subject(ip), limits["passkey_ip"]),
        ("passkey-all", "all", limits["passkey_global"])])
    if not decision.allowed:
        record_event(Tag.PASSKEY_RATE_LIMITED, request=request, reason="rate_limited",
                     retry_after=decision.retry_after, limit=decision.limit)
        raise RateLimited(decision.retry_after)
    passkey: Passkey | None = None
    try:
        challenge = challenges.consume(request, "signin")
        assertion = ceremonies.parse_assertion(raw)
        passkey = Passkey.objects.select_related("user").filter(
            credential_id=assertion.credential_id).first()
        if passkey is None:
            raise PasskeyUnknown()
        handle = PasskeyHandle.objects.filter(user=passkey.user).first()
        if assertion.user_handle is not None and (
                handle is None or bytes(handle.handle) != assertion.user_handle):
            # The authenticator says this credential belongs to someone else.
            raise PasskeyRejected("user handle does not match")
        verified = ceremonies.verify_assertion(
            assertion, challenge=challenge, public_key=bytes(passkey.public_key),
            sign_count=passkey.sign_count)
        if not may_sign_in(passkey.user):
            raise PasskeyAccountCannotSignIn()
        if not allowed_by_organization(passkey.user):
            # The organization's policy, checked at every sign-in like the other ways in.
            raise PasskeyNotAllowed()
        with transaction.atomic():
            # Conditional on the counter just checked: of two uses racing with the same
            # counter value, only one moves it (a cloned authenticator shows up here).
            moved = Passkey.objects.filter(pk=passkey.pk, sign_count=passkey.sign_count).update(
                sign_count=verified.sign_count, backup_state=verified.backup_state,
                last_used_at=now())
            if moved != 1:
                raise PasskeyRejected("sign count changed meanwhile")
            finish_sign_in(request, passkey.user, METHOD, event=Tag.PASSKEY_SIGNED_IN,
                           passkey=passkey.pk)
            request.session[SESSION_PASSKEY_KEY] = passkey.pk
    except PasskeyProblem as problem:
        _failed(request, problem, stage="signin", user=passkey.user if passkey else None)
        raise
    return SignedIn(passkey.user.email, safe_next(next_url))


# --- Managing passkeys -------------------------------------------------------------------

def clean_name(name: str) -> str:
    return " ".join(str(name).split())[:NAME_MAX]


def rename(request: HttpRequest, user: User, passkey_id: int, name: str) -> Passkey:
    """Rename one of ``user``'s passkeys; raise ``PasskeyUnknown`` or ``PasskeyNameMissing``."""
    label = clean_name(name)
    if not label:
        raise PasskeyNameMissing()
    passkey = _own(user, passkey_id)
    passkey.name = label
    with transaction.atomic():
        passkey.save(update_fields=["name"])
        record_event(Tag.PASSKEY_RENAMED, request=request, user=user, passkey=passkey.pk)
    return passkey


def remove(request: HttpRequest, user: User, passkey_id: int) -> Passkey:
    """Delete one of ``user``'s passkeys: it can no longer sign anyone in.

    Needs a recent sign-in (``PasskeyNeedsRecentSignIn``); sends the person a notice.
    """
    _require_recent(request)
    passkey = _own(user, passkey_id)
    with transaction.atomic():
        record_event(Tag.PASSKEY_REMOVED, request=request, user=user, passkey=passkey.pk,
                     name=passkey.name)
        passkey.delete()
        notices.passkey_changed(user, "removed", passkey.name)
    return passkey


def _own(user: User, passkey_id: int) -> Passkey:
    # Someone else's passkey id reads exactly as one that does not exist.
    passkey = Passkey.objects.filter(user=user, pk=passkey_id).first()
    if passkey is None:
        raise PasskeyUnknown()
    return passkey


def _failed(request: HttpRequest, problem: PasskeyProblem, *, stage: str,
            user: Any = None) -> None:
    detail = {"error": str(problem)[:200]} if str(problem) else {}
    record_event(Tag.PASSKEY_FAILED, request=request, user=user, reason=problem.reason,
                 stage=stage, **detail)
