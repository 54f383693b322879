"""The staff admin's site: signing in the portal's way, no passwords, one permission seam.

``PortalAdminSite`` is installed as Django's default site by ``apps.PortalAdminConfig``, so
``@admin.register`` and ``admin.site`` everywhere mean this site.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar, cast
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse

from portal.core.http import safe_next
from portal.passkeys.flows import has_passkey, session_used_passkey
from portal.signin.views.recent import refuse_unless_recent

ADMIN_CHANGES = "make changes in the staff admin"
_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


def _changes_need_recent_sign_in(view: Callable[..., HttpResponseBase]
                                 ) -> Callable[..., HttpResponseBase]:
    """Refuse every admin POST (each adds, changes or deletes) unless the sign-in is recent.

    A staff session lives up to 14 days; a cookie taken from it must not be enough to change
    people, organizations or groups (ASVS 5.0 7.5). The rule is ``signin.sessions``'s; after
    signing in again the staff member comes back to the same admin page.
    """
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method == "POST":
            refusal = refuse_unless_recent(request, action=ADMIN_CHANGES,
                                           return_to=request.get_full_path())
            if refusal is not None:
                return refusal
        return view(request, *args, **kwargs)
    return guarded


class PortalAdminSite(admin.AdminSite):
    """Django's admin with the portal's sign-in and sign-out and no password pages."""

    site_header = "Cloud Sentry staff"
    site_title = "Cloud Sentry staff"
    index_title = "Staff admin"

    def has_permission(self, request: HttpRequest) -> bool:
        """Say whether this request may use the staff admin: an active staff member's,
        signed in on this browser with a passkey they still have.

        Every admin page asks here (and the login page, to tell a signed-in person who may
        not enter from one who may). The admin can change any customer's identity, so an
        email link alone, which NIST SP 800-63B-4 does not accept as a second factor and
        which is open to phishing, must not open it: only a passkey session does.
        """
        return self.is_staff_member(request) and session_used_passkey(request)

    @staticmethod
    def is_staff_member(request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_authenticated and user.is_active and user.is_staff)

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        """Wrap every admin page: staff only, and a POST (a change) needs a recent sign-in."""
        if view == self.logout:
            return super().admin_view(view, cacheable)  # signing out must always work
        return super().admin_view(cast(_View, _changes_need_recent_sign_in(view)), cacheable)

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None
              ) -> HttpResponse:
        """Send people to the portal's own sign-in page; there is no admin password form.

        A signed-in person who may not use the admin gets a plain "staff only" page instead
        of another trip to the sign-in page (which would send them straight back, in a loop).
        """
        # The destination is re-checked here and again by the sign-in flow: same-site only.
        destination = safe_next(request.GET.get("next"), reverse("admin:index"))
        if request.user.is_authenticated:
            if self.has_permission(request):
                return redirect(destination)
            if self.is_staff_member(request):
                return self._ask_for_passkey(request, destination)
            return render(request, "core/error.html", {
                "title": "This area is for staff only",
                "message": "The staff admin is for Cloud Sentry staff. Your service requests "
                           "are on the portal home page."}, status=403)
        return redirect(f"{reverse('signin:start')}?{urlencode({'next': destination})}")

    @staticmethod
    def _ask_for_passkey(request: HttpRequest, destination: str) -> HttpResponse:
        """Send staff without a passkey session to add one, or to sign in with theirs."""
        if not has_passkey(request.user):  # type: ignore[arg-type]
            messages.info(request, "The staff admin opens only when you sign in with a "
                          "passkey. Add one here, then sign in with it.")
            return redirect("passkeys:list")
        return redirect(f"{reverse('passkeys:use')}?{urlencode({'next': destination})}")

    def logout(self, request: HttpRequest,  # type: ignore[override]  # a redirect, not a page
               extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """Use the portal's sign-out, which also ends the session row and writes the audit."""
        return redirect("signin:signout")

    def password_change(self, request: HttpRequest,
                        extra_context: dict[str, Any] | None = None) -> NoReturn:
        """There are no passwords to change; a password set here could only mislead."""
        raise Http404("There are no passwords in this portal.")

    def password_change_done(self, request: HttpRequest,
                             extra_context: dict[str, Any] | None = None) -> NoReturn:
        raise Http404("There are no passwords in this portal.")
