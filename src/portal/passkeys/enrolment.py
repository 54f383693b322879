"""One-time enrolment links: how an operator lets a person in to add a passkey.

Staff may use the admin only with a passkey, so the first staff member (and one who lost
every passkey) needs a door that does not depend on one. An operator runs
``portal adduser EMAIL --staff`` or ``portal passkey-reset EMAIL``, which print a link:

- 32 random bytes in the URL path; only their SHA-256 is stored;
- one use, by one conditional ``UPDATE`` (two clicks racing: one wins);
- expiring after ``PASSKEY_ENROLMENT_SECONDS``; a newer link replaces older ones;
- opening it (GET) consumes nothing, so a mail or chat scanner cannot burn it; the page's
  button (POST) signs the person in through ``finish_sign_in`` and lands on the Passkeys
  page. That session is an enrolment session, not a passkey one: the admin still opens
  only after the person signs in with the passkey they add.

Every step is audited: issued (with who ran the command, when known), used, refused.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse

from portal.accounts.models import User, revoke_access
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.passkeys import notices
from portal.passkeys.errors import (
    EnrolmentLinkExpired,
    EnrolmentLinkProblem,
    EnrolmentLinkUsed,
    PasskeyAccountCannotSignIn,
)
from portal.passkeys.models import EnrolmentLink, Passkey
from portal.signin.flows.finish import finish_sign_in

METHOD = "enrolment"
# Why an operator's reset ended the person's sessions, as the audit trail names it.
RESET_REASON = "passkeys_reset"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(user: User, *, by: str = "") -> str:
    """Return a new enrolment link for ``user``; older open links of theirs stop working.

    ``by`` names where it came from (``adduser``, ``passkey-reset``) for the audit row.
    """
    secret = secrets.token_urlsafe(32)
    moment = now()
    with transaction.atomic():
        EnrolmentLink.objects.filter(user=user, used_at__isnull=True,
                                     revoked_at__isnull=True).update(revoked_at=moment)
        link = EnrolmentLink.objects.create(
            user=user, secret_hash=_hash(secret), created_at=moment,
            expires_at=moment + timedelta(seconds=settings.PASSKEY_ENROLMENT_SECONDS))
        record_event(Tag.PASSKEY_ENROLMENT_ISSUED, user=user, link=link.pk, by=by,
                     expires_at=link.expires_at.isoformat())
    base = str(settings.PORTAL_BASE_URL).rstrip("/")
    return base + reverse("passkeys:enrol", args=[secret])


def find(secret: str) -> EnrolmentLink:
    """Return the open link for ``secret`` without using it; raise if it cannot be used."""
    link = EnrolmentLink.objects.select_related("user").filter(
        secret_hash=_hash(secret)).first()
    if link is None or link.revoked_at is not None:
        raise EnrolmentLinkProblem()
    if link.used_at is not None:
        raise EnrolmentLinkUsed()
    if link.expires_at <= now():
        raise EnrolmentLinkExpired()
    if not link.user.is_active or (link.user.organization is not None
                                   and not link.user.organization.is_active):
        raise PasskeyAccountCannotSignIn()
    return link


def redeem(request: HttpRequest, secret: str) -> User:
    """Use the link for ``secret`` once and sign its person in on this browser.

    Raises an ``EnrolmentLinkProblem`` (or ``PasskeyAccountCannotSignIn``), audited.
    """
    try:
        link = find(secret)
        with transaction.atomic():
            used = EnrolmentLink.objects.filter(
                pk=link.pk, used_at__isnull=True, revoked_at__isnull=True,
                expires_at__gt=now()).update(used_at=now())
            if used != 1:
                raise EnrolmentLinkUsed()  # another click got there first
            finish_sign_in(request, link.user, METHOD, event=Tag.PASSKEY_ENROLMENT_USED,
                           link=link.pk)
    except (EnrolmentLinkProblem, PasskeyAccountCannotSignIn) as problem:
        record_event(Tag.PASSKEY_FAILED, request=request, reason=problem.reason,
                     stage="enrolment")
        raise
    return link.user


@transaction.atomic
def reset(user: User, *, by: str = "passkey-reset") -> tuple[int, str]:
    """Remove every passkey of ``user``, end all their sessions; return (removed, new link).

    For a staff member who lost their passkeys: the operator gives them the new link.
    """
    removed = Passkey.objects.filter(user=user).count()
    Passkey.objects.filter(user=user).delete()
    # Moving the session epoch ends every session at its next request (accounts' rule),
    # including one an attacker might hold with the lost device's passkey.
    revoke_access([user.pk], RESET_REASON)
    record_event(Tag.PASSKEY_RESET, user=user, removed=removed, by=by)
    notices.passkey_changed(user, "reset")
    return removed, issue(user, by=by)


def lifetime_text() -> str:
    """Say how long an enrolment link works, for the operator's console."""
    hours, seconds = divmod(int(settings.PASSKEY_ENROLMENT_SECONDS), 3600)
    if hours and not seconds:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{int(settings.PASSKEY_ENROLMENT_SECONDS) // 60} minutes"
