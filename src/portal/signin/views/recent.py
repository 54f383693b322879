"""Sensitive actions need a recent sign-in: the decorator and the "Sign in again" page.

The rule itself is ``portal.signin.sessions.signed_in_recently``. Views that end sessions
use ``recent_sign_in_required``; the staff admin applies ``refuse_unless_recent`` to every
POST (``accounts/site.py: PortalAdminSite.admin_view``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.core.http import safe_next
from portal.core.text import duration_text
from portal.signin.oidc import providers
from portal.signin.sessions import signed_in_recently

View = Callable[..., HttpResponse]


def sign_in_again(request: HttpRequest, *, action: str, return_to: str) -> HttpResponse:
    """Refuse a sensitive action plainly (403) and offer every way to sign in again.

    Nothing was changed. Each way offered carries ``return_to`` as ``next``, so after the
    fresh sign-in the person is back on the page they were using.
    """
    record_event(Tag.RECENT_SIGN_IN_REQUIRED, request=request, user=request.user,
                 action=action, path=request.path[:200])
    next_url = safe_next(return_to)
    # The person is known here: offer only the ways their organization allows.
    organization = getattr(request.user, "organization", None)
    return render(request, "signin/sign_in_again.html", {
        "action": action, "next": next_url, "email": request.user.email,  # type: ignore[union-attr]
        "window": duration_text(settings.RECENT_SIGN_IN_SECONDS),
        "providers": providers.configured_providers(organization),
        "email_allowed": organization is None or organization.allows("email"),
        "passkey_allowed": organization is None or organization.allows("passkey"),
        "link_lifetime": duration_text(settings.MAGIC_LINK_TTL_SECONDS)}, status=403)


def refuse_unless_recent(request: HttpRequest, *, action: str,
                         return_to: str) -> HttpResponse | None:
    """Return the "Sign in again" page if this sign-in is too old, else ``None``."""
    if signed_in_recently(request):
        return None
    return sign_in_again(request, action=action, return_to=return_to)


def recent_sign_in_required(*, action: str, return_to: str) -> Callable[[View], View]:
    """Make a signed-in view refuse, with "Sign in again", when the sign-in is not recent.

    ``action`` says in a few words what needs it ("sign out other sessions"); ``return_to``
    is the URL name of the page to come back to after signing in again. Put it below
    ``login_required``: a visitor who is not signed in at all goes to the sign-in page.
    """
    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            refusal = refuse_unless_recent(request, action=action,
                                           return_to=reverse(return_to))
            return refusal or view(request, *args, **kwargs)
        return guarded
    return decorate
