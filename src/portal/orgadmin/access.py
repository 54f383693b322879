"""Who may use the organization admin pages, and which organization they act on.

An organization admin is a signed-in, active person whose one membership has the admin
role in an active organization. Staff of Cloud Sentry use the staff admin, not these pages.

An organization that requires passkeys for its admins (``require_passkeys_for_admins``)
opens these pages only to a session signed in with a passkey the admin still has
(``passkeys.flows.session_used_passkey``), as the staff admin does for staff: an admin
without one is sent to add one, an admin with one to sign in with it, then comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse

from portal.accounts.models import Membership, Organization
from portal.passkeys.flows import has_passkey, session_used_passkey

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
        if organization.require_passkeys_for_admins and not session_used_passkey(request):
            if not has_passkey(request.user):  # type: ignore[arg-type]
                return redirect("passkeys:list")
            # A POST's form is not replayed: the admin comes back to the page and resubmits.
            back = request.get_full_path() if request.method == "GET" else reverse(
                "orgadmin:index")
            return redirect(f"{reverse('passkeys:use')}?{urlencode({'next': back})}")
        return view(request, *args, organization=organization, **kwargs)

    return wrapper
