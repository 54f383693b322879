"""Plain factory functions for tests: people and organizations, built through the services.

They go through ``portal.accounts.services`` so a test sets things up the way the portal
does (normalized addresses, verified domains, unusable passwords), not by hand.
"""

from __future__ import annotations

from collections.abc import Iterable

from portal.accounts.models import Organization, User
from portal.accounts.services import add_user, create_organization


def make_org(name: str = "Northwind Logistics", domains: Iterable[str] = ("northwind.example",),
             *, auto_join: bool = False, allow_email_link: bool = True,
             allow_google: bool = True, allow_microsoft: bool = True) -> Organization:
    """Create an organization with verified ``domains`` and the given sign-in policy."""
    org = create_organization(name, list(domains), auto_join=auto_join)
    if not (allow_email_link and allow_google and allow_microsoft):
        org.allow_email_link = allow_email_link
        org.allow_google = allow_google
        org.allow_microsoft = allow_microsoft
        org.save(update_fields=["allow_email_link", "allow_google", "allow_microsoft"])
    return org


def make_user(email: str = "alice@northwind.example", org: Organization | None = None, *,
              admin: bool = False, staff: bool = False, active: bool = True,
              full_name: str = "", superuser: bool = False) -> User:
    """Create a person, a member of ``org`` when given (an organization admin if ``admin``)."""
    user = add_user(email, org, admin=admin, staff=staff, full_name=full_name)
    changed = []
    if not active:
        user.is_active = False
        changed.append("is_active")
    if superuser:
        user.is_superuser = True
        changed.append("is_superuser")
    if changed:
        user.save(update_fields=changed)
    return user
