"""Inviting a colleague: invite, resend, revoke, and the invitee's one-use link.

Rules kept here (each has a test in ``tests/orgadmin``):

- **One organization per person.** An address that belongs to someone in another
  organization, or to Cloud Sentry staff, is refused when inviting and again when the link
  is used (it may have changed hands in between). Moving a person is Cloud Sentry's job.
  So is a new address at a domain another organization has verified: its people join
  that organization, and an invitation from elsewhere must not claim them first.
- **The secret.** 256 bits derived from a stored seed at send time; only its SHA-256 is
  looked up. A resend draws a new seed, so the earlier email's link is dead at once.
- **Scanner-safe.** Loading the link (GET) changes nothing; the page's one button (POST)
  accepts, by one conditional UPDATE, so two clicks racing accept once.
- **The policy holds.** Accepting creates (or turns back on) the person and their one
  membership. It signs them in only where the organization lets an email link do so
  (``eligibility(…, "email")``) and is not in strict same-browser mode: an invitation is an
  emailed link opened in a browser that never asked. Otherwise the person has joined and
  is shown the ways in their organization allows.
- **Bounded.** Invitations and resends count against a per-admin and a per-organization
  limit (``INVITATION_RATE_LIMITS``), so a hijacked admin session cannot spray email.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from portal.accounts.models import Membership, Organization, User
from portal.accounts.services import (
    InvalidEmail,
    clean_email,
    eligibility,
    find_user,
    is_privileged,
    organization_for_verified_domain,
)
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core import ratelimit
from portal.core.clock import now
from portal.mail.outbox import enqueue
from portal.orgadmin.errors import (
    AlreadyInOrganization,
    AlreadyInvited,
    BadChoice,
    BelongsElsewhere,
    DomainElsewhere,
    InvalidAddress,
    InvitationClosed,
    InvitationExpired,
    InvitationNotForYou,
    InvitationProblem,
    InvitationRevoked,
    InvitationsRateLimited,
    InvitationUnknown,
    InvitationUsed,
)
from portal.orgadmin.models import Invitation
from portal.signin import tokens
from portal.signin.flows.finish import finish_sign_in

METHOD = "invitation"
RENDERER = "orgadmin.invitation"
KIND = "orgadmin.invitation"
_TOKEN_SALT = "portal.orgadmin.invitations.token"  # noqa: S105 - a purpose, not a secret
_PROBLEMS: dict[str, type[InvitationProblem]] = {
    "revoked": InvitationRevoked, "used": InvitationUsed, "expired": InvitationExpired}


def token_of(seed: str) -> str:
    """Return the link secret of ``seed``: 256 bits, URL-safe, shaped like a sign-in token."""
    digest = salted_hmac(_TOKEN_SALT, seed, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_of(invitation: Invitation) -> str:
    from django.urls import reverse

    base = str(settings.PORTAL_BASE_URL).rstrip("/")
    return base + reverse("orgadmin:invitation", args=[token_of(invitation.link_seed)])


def _new_secret(invitation: Invitation) -> None:
    invitation.link_seed = tokens.generate_seed()
    invitation.token_hash = tokens.hash_token(token_of(invitation.link_seed))


def _lifetime() -> timedelta:
    return timedelta(seconds=int(settings.INVITATION_TTL_SECONDS))


# --- The admin's side -------------------------------------------------------------------

def clean_role(raw: str) -> str:
    if raw not in Membership.Role.values:
        raise BadChoice("Choose Member or Organization admin as the role.")
    return raw


def _clean_address(raw: str) -> str:
    try:
        return clean_email(raw)
    except InvalidEmail as exc:
        raise InvalidAddress(str(exc)) from None


def _spend_allowance(request: HttpRequest, organization: Organization, admin: User) -> None:
    # Outside any transaction: with the database store a rollback would un-count it.
    limits = settings.INVITATION_RATE_LIMITS
    decision = ratelimit.check_all([
        ("invite-admin", str(admin.pk), limits["admin"]),
        ("invite-org", str(organization.pk), limits["organization"])])
    if not decision.allowed:
        record_event(Tag.ORGADMIN_INVITATION_RATE_LIMITED, request=request, actor=admin,
                     organization=organization, reason="rate_limited",
                     retry_after=decision.retry_after)
        raise InvitationsRateLimited(decision.retry_after)


def _check_invitable(organization: Organization, address: str) -> None:
    person = find_user(address)
    if person is None:
        owner = organization_for_verified_domain(address)
        if owner is not None and owner.pk != organization.pk:
            raise DomainElsewhere()
        return
    if is_privileged(person):
        raise BelongsElsewhere()
    current = person.organization
    if current is None:
        return  # someone who once left; the invitation brings them back
    if current.pk != organization.pk:
        raise BelongsElsewhere()
    raise AlreadyInOrganization(active=person.is_active)


def _send(invitation: Invitation) -> None:
    # Rendered by the worker (InvitationEmail): the outbox row holds no link.
    enqueue(to=invitation.email, renderer=RENDERER, kind=KIND,
            payload={"invitation": invitation.pk, "token_hash": invitation.token_hash},
            not_after=invitation.expires_at)


def invite(request: HttpRequest, organization: Organization, admin: User, *, email: str,
           role: str = Membership.Role.MEMBER) -> Invitation:
    """Invite ``email`` to ``organization`` as ``role``; queue the welcome email.

    Raises ``InvalidAddress``, ``BadChoice``, ``InvitationsRateLimited``,
    ``BelongsElsewhere``, ``AlreadyInOrganization`` or ``AlreadyInvited``.
    """
    address = _clean_address(email)
    role = clean_role(role)
    _spend_allowance(request, organization, admin)
    moment = now()
    with transaction.atomic():
        # One admin change of this organization at a time (see members.lock_admins).
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        _check_invitable(organization, address)
        if Invitation.objects.open(moment).filter(organization=organization,
                                                  email=address).exists():
            raise AlreadyInvited()
        invitation = Invitation(organization=organization, email=address, invited_by=admin,
                                role=role, created_at=moment, sent_at=moment,
                                expires_at=moment + _lifetime())
        _new_secret(invitation)
        invitation.save()
        record_event(Tag.ORGADMIN_INVITATION_SENT, request=request, actor=admin,
                     organization=organization, email=address, invitation=invitation.pk,
                     role=role, expires_at=invitation.expires_at.isoformat())
        _send(invitation)
    return invitation


def _own_invitation(organization: Organization, invitation_id: int) -> Invitation:
    invitation = (Invitation.objects.select_for_update()
                  .filter(pk=invitation_id, organization=organization).first())
    if invitation is None:
        raise InvitationUnknown()
    return invitation


def resend(request: HttpRequest, organization: Organization, admin: User,
           invitation_id: int) -> Invitation:
    """Send a new link for an open or expired invitation; the earlier link stops working."""
    _spend_allowance(request, organization, admin)
    moment = now()
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        invitation = _own_invitation(organization, invitation_id)
        if invitation.accepted_at is not None or invitation.revoked_at is not None:
            raise InvitationClosed()
        _check_invitable(organization, invitation.email)
        _new_secret(invitation)
        invitation.sent_at = moment
        invitation.expires_at = moment + _lifetime()
        invitation.send_count += 1
        invitation.save(update_fields=["link_seed", "token_hash", "sent_at", "expires_at",
                                       "send_count"])
        record_event(Tag.ORGADMIN_INVITATION_RESENT, request=request, actor=admin,
                     organization=organization, email=invitation.email,
                     invitation=invitation.pk, send_count=invitation.send_count)
        _send(invitation)
    return invitation


def revoke(request: HttpRequest, organization: Organization, admin: User,
           invitation_id: int) -> Invitation:
    """Stop an invitation: its link shows "this invitation was withdrawn"."""
    with transaction.atomic():
        invitation = _own_invitation(organization, invitation_id)
        if invitation.accepted_at is not None or invitation.revoked_at is not None:
            raise InvitationClosed()
        invitation.revoked_at = now()
        invitation.save(update_fields=["revoked_at"])
        record_event(Tag.ORGADMIN_INVITATION_REVOKED, request=request, actor=admin,
                     organization=organization, email=invitation.email,
                     invitation=invitation.pk)
    return invitation


def waiting(organization: Organization) -> list[Invitation]:
    """Return the invitations not yet accepted or revoked (expired ones too: resend them)."""
    return list(Invitation.objects.filter(organization=organization, accepted_at__isnull=True,
                                          revoked_at__isnull=True)
                .select_related("invited_by").order_by("email"))


# --- The invitee's side -----------------------------------------------------------------

@dataclass(frozen=True)
class Accepted:
    user: User
    organization: Organization
    signed_in: bool


def _lookup(token: str, *, lock: bool = False) -> Invitation:
    if not tokens.looks_like_token(token):
        raise InvitationUnknown()
    rows = Invitation.objects.select_related("organization", "invited_by")
    if lock:
        rows = rows.select_for_update(of=("self",))
    invitation = rows.filter(token_hash=tokens.hash_token(token)).first()
    if invitation is None:
        raise InvitationUnknown()
    return invitation


def _usable(invitation: Invitation) -> None:
    problem = invitation.problem(now())
    if problem is not None:
        error = _PROBLEMS[problem]()
        error.invitation = invitation  # type: ignore[attr-defined]
        raise error
    if not invitation.organization.is_active:
        raise InvitationNotForYou()


def find(token: str) -> Invitation:
    """Return the invitation of ``token`` if it can be accepted; change nothing (GET)."""
    invitation = _lookup(token)
    _usable(invitation)
    return invitation


def _joining_person(invitation: Invitation) -> User:
    """Return the person the invitation makes a member, created or turned on as needed."""
    organization = invitation.organization
    person = find_user(invitation.email)
    if person is None:
        person = User.objects.create_user(invitation.email)
    elif is_privileged(person):
        raise InvitationNotForYou()
    else:
        current = person.organization
        if current is not None and current.pk != organization.pk:
            raise InvitationNotForYou()  # joined another organization meanwhile
        if current is not None and not person.is_active:
            raise InvitationNotForYou()  # an admin turned this member off: that stands
        if not person.is_active:
            person.is_active = True
            person.save(update_fields=["is_active"])
    if person.organization is None:
        Membership.objects.create(user=person, organization=organization,
                                  role=invitation.role)
    found = find_user(invitation.email)
    assert found is not None
    return found


def signs_in_on_accept(organization: Organization, person: User) -> bool:
    """Say whether accepting an invitation signs the person in on that browser.

    An invitation is an emailed link, opened in a browser that never asked: only where the
    organization allows email sign-in and is not in strict same-browser mode.
    """
    return (eligibility(person.email, "email").allowed
            and not organization.strict_same_browser)


def accept(request: HttpRequest, token: str) -> Accepted:
    """Accept the invitation of ``token`` (POST): join, and sign in where the policy lets.

    Raises an ``InvitationProblem``; every refusal leaves an audit row.
    """
    invitation: Invitation | None = None
    try:
        with transaction.atomic():
            invitation = _lookup(token, lock=True)
            _usable(invitation)
            moment = now()
            person = _joining_person(invitation)
            used = Invitation.objects.open(moment).filter(pk=invitation.pk).update(
                accepted_at=moment, accepted_by=person)
            if used != 1:
                raise InvitationUsed()  # another click got there first
            organization = invitation.organization
            record_event(Tag.ORGADMIN_INVITATION_ACCEPTED, request=request, user=person,
                         organization=organization, invitation=invitation.pk,
                         role=invitation.role, invited_by=invitation.invited_by_id)
            signed_in = signs_in_on_accept(organization, person)
            if signed_in:
                finish_sign_in(request, person, METHOD, event=Tag.INVITATION_SIGNED_IN,
                               invitation=invitation.pk)
    except InvitationProblem as problem:
        found = getattr(problem, "invitation", None) or invitation
        record_event(Tag.INVITATION_REFUSED, request=request, reason=problem.reason,
                     email=found.email if found else "",
                     organization=found.organization if found else None)
        raise
    return Accepted(person, organization, signed_in)
