"""Verbs that change or answer questions about people and organizations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import transaction

from portal.accounts.models import (
    ORGANIZATION_DISABLED,
    Membership,
    Organization,
    OrganizationDomain,
    User,
    domain_of,
    normalize_email,
)

MAX_EMAIL_LENGTH = 254
_validate_email = EmailValidator()


class AccountError(Exception):
    """Base of the accounts app's domain errors."""


class InvalidEmail(AccountError):
    """The text given is not an address mail could be sent to."""


class AlreadyMember(AccountError):
    """The person already belongs to another organization; a person belongs to one."""

    def __init__(self, email: str, organization: Organization) -> None:
        super().__init__(f"{email} already belongs to {organization.name}. A person belongs "
                         f"to one organization: remove that membership first.")
        self.organization = organization


def clean_email(raw: str) -> str:
    """Return the normalized address, or raise ``InvalidEmail`` with a sentence for a person.

    CR and LF are refused outright: an address that reaches a mail header with a line
    break in it could add headers of the attacker's choosing.
    """
    if "\r" in raw or "\n" in raw or "\x00" in raw:
        raise InvalidEmail("An email address cannot contain line breaks.")
    address = normalize_email(raw)
    if not address:
        raise InvalidEmail("Enter your email address.")
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"An email address is at most {MAX_EMAIL_LENGTH} characters.")
    try:
        _validate_email(address)
    except ValidationError:
        raise InvalidEmail("Enter an email address like name@company.com.") from None
    return address


def find_user(email: str) -> User | None:
    """Return the person with this address, their organization loaded in the same query."""
    return (User.objects.select_related("membership__organization")
            .filter(email=normalize_email(email)).first())


def is_privileged(person: User) -> bool:
    """Say whether ``person`` is Cloud Sentry staff or a superuser (a protected account)."""
    return bool(person.is_staff or person.is_superuser)


def may_change_account(actor: Any, person: User) -> bool:
    """Say whether ``actor`` may change anything of ``person``'s account, or delete it.

    Only a superuser changes a staff or superuser account: its address (whoever owns the
    address signs in as the account), its flags, its memberships, its deletion. Anyone
    else allowed to edit people could otherwise make themselves that account, or hand it
    a membership in an organization whose identity provider they control.
    """
    return bool(getattr(actor, "is_superuser", False)) or not is_privileged(person)


def organization_for_verified_domain(email: str) -> Organization | None:
    domain = (OrganizationDomain.objects.select_related("organization")
              .filter(domain=domain_of(email), verified=True).first())
    return domain.organization if domain else None


@dataclass(frozen=True)
class Eligibility:
    """Who an address would sign in as, by a method, and if not, why not (for the audit)."""

    allowed: bool
    reason: str
    user: User | None = None
    organization: Organization | None = None
    joins: bool = False  # a new member will be created at sign-in (auto-join)


def find_users(emails: list[str]) -> dict[str, User]:
    """Return the people with these addresses by normalized address, in one query.

    Each comes with their organization, as ``find_user`` returns them.
    """
    addresses = {normalize_email(email) for email in emails}
    return {user.email: user for user in User.objects.select_related(
        "membership__organization").filter(email__in=addresses)}


_LOOK_UP: Any = object()


def eligibility(email: str, method: str, *, known: User | None = None,
                user: User | None = _LOOK_UP) -> Eligibility:
    """Decide whether ``email`` may sign in by ``method`` (email, google or microsoft).

    Active users whose organization allows the method may; so may a new address at a
    verified domain of an organization that auto-joins. Everyone else may not.
    ``known`` is the person the caller already loaded in this request, with their
    organization (``select_related("membership__organization")``): used, without a second
    look-up, only while it still has this very address. ``user`` is the person with this
    address, or None for nobody, when the caller looked a batch up with ``find_users``.
    """
    address = normalize_email(email)
    if user is _LOOK_UP:
        user = known if known is not None and known.email == address else find_user(address)
    if user is not None:
        refusal = user.access_refusal()  # user_disabled, organization_disabled
        if refusal is not None:
            return Eligibility(False, refusal, user=user, organization=user.organization)
        org = user.organization
        if org is None:
            # Staff without an organization sign in by email only.
            ok = user.is_staff and method == "email"
            return Eligibility(ok, "ok" if ok else "no_organization", user=user)
        if not org.allows(method):
            return Eligibility(False, "method_not_allowed", user=user, organization=org)
        return Eligibility(True, "ok", user=user, organization=org)
    org = organization_for_verified_domain(email)
    if org is None:
        return Eligibility(False, "unknown_address")
    if not org.auto_join:
        return Eligibility(False, "unknown_address", organization=org)
    if not org.is_active:
        return Eligibility(False, ORGANIZATION_DISABLED, organization=org)
    if not org.allows(method):
        return Eligibility(False, "method_not_allowed", organization=org)
    return Eligibility(True, "ok", organization=org, joins=True)


@transaction.atomic
def create_organization(name: str, domains: list[str] | None = None,
                        auto_join: bool = False) -> Organization:
    org = Organization.objects.create(name=name.strip(), auto_join=auto_join)
    for domain in domains or []:
        OrganizationDomain.objects.create(organization=org, domain=domain, verified=True)
    return org


@transaction.atomic
def add_user(email: str, organization: Organization | None = None, *, admin: bool = False,
             staff: bool = False, full_name: str = "") -> User:
    """Create a person (or return the existing one) and make them a member of ``organization``.

    A person belongs to one organization: one who already belongs to another raises
    ``AlreadyMember`` and nothing changes (moving someone is a deliberate edit of their
    membership, which also signs them out).
    """
    address = clean_email(email)
    user = find_user(address)
    if user is not None and organization is not None:
        current = user.organization
        if current is not None and current.pk != organization.pk:
            raise AlreadyMember(user.email, current)
    if user is None:
        user = User.objects.create_user(address, full_name=full_name, is_staff=staff)
    elif staff and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    if organization is not None:
        role = Membership.Role.ADMIN if admin else Membership.Role.MEMBER
        Membership.objects.update_or_create(user=user, defaults={
            "organization": organization, "role": role})
    return user


def join_on_sign_in(email: str, organization: Organization) -> User:
    """Create the member an auto-join sign-in proved; idempotent under a race."""
    return add_user(email, organization)
