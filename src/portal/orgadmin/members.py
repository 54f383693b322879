"""An organization's people, as its admins see and change them.

Rules kept here (each has a test in ``tests/orgadmin``):

- **Never the last admin.** Removing the admin role or turning off an admin is refused when
  it would leave the organization without an active admin. Race-safe: every such change
  locks the organization's row and its admins' membership rows first (``lock_admins``), so
  two admins removing each other at once cannot both succeed.
- **Not on yourself.** An admin cannot turn their own account off (someone else must).
- **Off means out, at once.** Turning someone off saves ``User.is_active``; the accounts
  app moves their session epoch, which ends every session they hold at its next request.
- **Staff accounts are Cloud Sentry's.** A staff or superuser account is never changed here.
- **Told by email.** The person hears of a role change and of being turned off or on.
- Every change is one transaction with its audit row (actor: the admin) and its email.

The list's "ways in used" and "last sign-in" come from the audit trail's successful
sign-ins (``SIGN_IN_TAGS``), two queries for a page, whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import Max, Q
from django.http import HttpRequest

from portal.accounts.models import Membership, Organization, User
from portal.accounts.services import is_privileged
from portal.audit.models import AuthEvent
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.orgadmin import notices
from portal.orgadmin.access import administered_organization
from portal.orgadmin.errors import (
    LastAdmin,
    MemberUnknown,
    NotOnYourself,
    ProtectedAccount,
)
from portal.orgadmin.invitations import clean_role

PAGE_SIZE = 25
QUERY_MAX = 100
# Successful sign-ins, whatever the way in; each row's detail names the method.
SIGN_IN_TAGS = (Tag.LINK_REDEEMED, Tag.OIDC_SUCCEEDED, Tag.PASSKEY_SIGNED_IN,
                Tag.PASSKEY_ENROLMENT_USED, Tag.INVITATION_SIGNED_IN)


@dataclass
class MemberRow:
    person: User
    role: str
    methods: list[str] = field(default_factory=list)
    last_sign_in: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Membership.Role.ADMIN


def administered(user: object) -> Organization | None:
    """Return the organization ``user`` administers now (after a change), or None."""
    if isinstance(user, User):
        user = User.objects.select_related("membership__organization").get(pk=user.pk)
    return administered_organization(user)


def clean_query(raw: str | None) -> str:
    return " ".join((raw or "").split())[:QUERY_MAX]


def member_page(organization: Organization, query: str, page_number: str | None,
                ) -> tuple[Page[User], list[MemberRow]]:
    """Return one page of the organization's people matching ``query``, with their sign-ins."""
    people = (User.objects.filter(membership__organization=organization)
              .select_related("membership").order_by("email"))
    if query:
        people = people.filter(Q(email__icontains=query) | Q(full_name__icontains=query))
    page = Paginator(people, PAGE_SIZE).get_page(page_number)
    ids = [person.pk for person in page]
    sign_ins = AuthEvent.objects.filter(user_id__in=ids,
                                        tag__in=[t.value for t in SIGN_IN_TAGS]).order_by()
    last = dict(sign_ins.values("user_id").annotate(last=Max("created_at"))
                .values_list("user_id", "last"))
    methods: dict[int, set[str]] = {}
    for user_id, method in sign_ins.values_list("user_id", "detail__method").distinct():
        if isinstance(method, str) and method:
            methods.setdefault(user_id, set()).add(method)
    rows = [MemberRow(person, person.membership.role, sorted(methods.get(person.pk, ())),
                      last.get(person.pk)) for person in page]
    return page, rows


def lock_admins(organization: Organization) -> list[int]:
    """Lock the organization and its admins' memberships; return the active admins' ids.

    Call inside the transaction that changes a role or turns someone off. The organization
    row is locked first, so every admin change of one organization waits for the previous
    one: the count it reads is still true when it commits.
    """
    Organization.objects.select_for_update().filter(pk=organization.pk).first()
    admins = (Membership.objects.select_for_update(of=("self",))
              .filter(organization=organization, role=Membership.Role.ADMIN)
              .select_related("user"))
    return [m.user_id for m in admins if m.user.is_active]


def _member(organization: Organization, user_id: int) -> User:
    person = (User.objects.select_related("membership__organization")
              .filter(pk=user_id, membership__organization=organization).first())
    if person is None:
        raise MemberUnknown()
    if is_privileged(person):
        raise ProtectedAccount()
    return person


def disable(request: HttpRequest, organization: Organization, admin: User,
            user_id: int) -> User:
    """Turn a member's account off: every session of theirs ends now; they are told."""
    with transaction.atomic():
        active_admins = lock_admins(organization)
        person = _member(organization, user_id)
        if person.pk == admin.pk:
            raise NotOnYourself()
        if not person.is_active:
            return person
        if person.pk in active_admins and len(active_admins) <= 1:
            raise LastAdmin()
        person.is_active = False
        person.save(update_fields=["is_active"])  # moves the session epoch
        record_event(Tag.ORGADMIN_MEMBER_DISABLED, request=request, user=person,
                     organization=organization, actor=admin)
        notices.account_changed(person, organization, "disabled", by=admin)
    return person


def enable(request: HttpRequest, organization: Organization, admin: User,
           user_id: int) -> User:
    """Turn a member's account back on; their old sessions stay ended."""
    with transaction.atomic():
        lock_admins(organization)
        person = _member(organization, user_id)
        if person.is_active:
            return person
        person.is_active = True
        person.save(update_fields=["is_active"])
        record_event(Tag.ORGADMIN_MEMBER_ENABLED, request=request, user=person,
                     organization=organization, actor=admin)
        notices.account_changed(person, organization, "enabled", by=admin)
    return person


def set_role(request: HttpRequest, organization: Organization, admin: User, user_id: int,
             role: str) -> User:
    """Make a member an admin or a plain member again; never leave no active admin."""
    role = clean_role(role)
    with transaction.atomic():
        active_admins = lock_admins(organization)
        person = _member(organization, user_id)
        old = person.membership.role
        if old == role:
            return person
        if role == Membership.Role.MEMBER and not [i for i in active_admins if i != person.pk]:
            raise LastAdmin()
        Membership.objects.filter(pk=person.membership.pk).update(role=role)
        person.membership.role = role
        record_event(Tag.ORGADMIN_MEMBER_ROLE_CHANGED, request=request, user=person,
                     organization=organization, actor=admin, old=old, new=role)
        notices.account_changed(
            person, organization,
            "made_admin" if role == Membership.Role.ADMIN else "admin_removed", by=admin)
    return person
