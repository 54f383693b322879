"""Who may use the organization admin pages, and which organization they act on.

An organization admin is a signed-in, active person whose one membership has the admin
role in an active organization. Staff of Cloud Sentry use the staff admin, not these pages.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render

from portal.accounts.models import Membership, Organization

View = Callable[..., HttpResponseBase]


def administered_organization(user: Any) -> Organization | None:
    """Return the organization this person administers, or None."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    try:
        membership = user.membership
    except Membership.DoesNotExist:
        return None
    if membership.role != Membership.Role.ADMIN or not membership.organization.is_active:
        return None
    return membership.organization


def organization_admin(view: View) -> View:
    """Let only organization admins in; pass the view their organization as ``organization``.

    Someone signed in who is not an admin gets a plain 403 page saying who can help.
    """
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        organization = administered_organization(request.user)
        if organization is None:
            return render(request, "orgadmin/not_admin.html", status=403)
        return view(request, *args, organization=organization, **kwargs)

    return wrapper
