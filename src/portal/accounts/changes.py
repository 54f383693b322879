"""What staff changed in the admin, before → after, written to the audit trail.

Each audited kind of row has a snapshot: the fields that decide who may sign in and what
they may do (addresses, flags, admin permissions, memberships, sign-in policy). The admin
takes one from the database before a save and one after it, and ``record_change`` writes
one ``admin:<subject>:<action>`` row naming the staff member (``actor``) and the changes
as ``{"field": [before, after]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.accounts.models import Membership, Organization, User
from portal.audit.models import AuthEvent
from portal.audit.services import record_event
from portal.audit.tags import Tag

Snapshot = dict[str, Any]


def _permission_names(permissions: QuerySet[Permission]) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}"
                  for p in permissions.select_related("content_type"))


def _user(user: User) -> Snapshot:
    return {"email": user.email, "is_active": user.is_active, "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
            "groups": sorted(group.name for group in user.groups.all()),
            "user_permissions": _permission_names(user.user_permissions.all())}


def _organization(org: Organization) -> Snapshot:
    return {"name": org.name, "is_active": org.is_active,
            "allow_email_link": org.allow_email_link, "allow_google": org.allow_google,
            "allow_microsoft": org.allow_microsoft, "auto_join": org.auto_join,
            "require_passkeys_for_admins": org.require_passkeys_for_admins,
            "email_domains": sorted(f"{d.domain}{' (verified)' if d.verified else ''}"
                                    for d in org.domains.all()),
            "google_workspace_domains": sorted(d.domain for d in org.google_domains.all()),
            "microsoft_tenants": sorted(t.tenant_id for t in org.microsoft_tenants.all())}


def _membership(membership: Membership) -> Snapshot:
    return {"user": membership.user.email, "organization": membership.organization.name,
            "role": membership.role}


def _group(group: Group) -> Snapshot:
    return {"name": group.name, "permissions": _permission_names(group.permissions.all())}


SNAPSHOTS: dict[type[models.Model], Callable[[Any], Snapshot]] = {
    User: _user, Organization: _organization, Membership: _membership, Group: _group}
# (added, changed, removed) per kind of row.
TAGS: dict[type[models.Model], tuple[Tag, Tag, Tag]] = {
    User: (Tag.ADMIN_USER_ADDED, Tag.ADMIN_USER_CHANGED, Tag.ADMIN_USER_DELETED),
    Organization: (Tag.ADMIN_ORGANIZATION_ADDED, Tag.ADMIN_ORGANIZATION_CHANGED,
                   Tag.ADMIN_ORGANIZATION_DELETED),
    Membership: (Tag.ADMIN_MEMBERSHIP_ADDED, Tag.ADMIN_MEMBERSHIP_CHANGED,
                 Tag.ADMIN_MEMBERSHIP_REMOVED),
    Group: (Tag.ADMIN_GROUP_ADDED, Tag.ADMIN_GROUP_CHANGED, Tag.ADMIN_GROUP_DELETED),
}


def snapshot(obj: models.Model) -> Snapshot:
    """Return the audited fields of ``obj`` as they are on the instance and its relations."""
    return SNAPSHOTS[type(obj)](obj)


def stored_snapshot(obj: models.Model) -> Snapshot | None:
    """Return the audited fields of ``obj`` as the database holds them (before a save)."""
    if obj.pk is None:
        return None
    stored = type(obj)._base_manager.filter(pk=obj.pk).first()
    return snapshot(stored) if stored is not None else None


def difference(before: Snapshot | None, after: Snapshot | None) -> dict[str, list[Any]]:
    """Return ``{field: [before, after]}`` for every audited field that differs."""
    before, after = before or {}, after or {}
    return {name: [before.get(name), after.get(name)] for name in {**before, **after}
            if before.get(name) != after.get(name)}


def _subject(obj: models.Model) -> dict[str, Any]:
    """Return whom the audit row is about: the person, and the organization concerned."""
    if isinstance(obj, User):
        return {"user": obj}
    if isinstance(obj, Membership):
        return {"user": obj.user, "organization": obj.organization}
    if isinstance(obj, Organization):
        return {"organization": obj}
    return {"subject": str(obj)}


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


def record_change(request: HttpRequest, obj: models.Model,
                  before: Snapshot | None) -> AuthEvent | None:
    """Record that staff added (``before`` None) or changed ``obj``; None if nothing audited
    changed."""
    changes = difference(before, snapshot(obj))
    if before is not None and not changes:
        return None
    added, changed, _ = TAGS[type(obj)]
    return record_event(added if before is None else changed, request=request,
                        actor=_actor(request), changes=changes, **_subject(obj))


def record_removal(request: HttpRequest, obj: models.Model,
                   before: Snapshot | None = None) -> AuthEvent:
    """Record that staff are deleting ``obj``; call before the row goes."""
    before = before if before is not None else snapshot(obj)
    extra: dict[str, Any] = {}
    if isinstance(obj, User) and obj.organization is not None:
        extra["organization_name"] = obj.organization.name
    if isinstance(obj, Organization):
        extra["members"] = sorted(obj.memberships.values_list("user__email", flat=True))
    return record_event(TAGS[type(obj)][2], request=request, actor=_actor(request),
                        changes=difference(before, None), **_subject(obj), **extra)
