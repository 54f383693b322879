"""The offer "Sign in faster next time: add a passkey", shown after other sign-ins.

Shown on the first portal page after a sign-in by email link, code, Google or Microsoft,
never to someone who already has a passkey, and never again in a browser that dismissed it
(a cookie, so it holds across sessions without storing anything about the visitor). People
who must use a passkey (``flows.must_use_passkey``) see it after every such sign-in and
cannot dismiss it, because for them it is not optional.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from portal.passkeys.flows import METHOD, allowed_by_organization, has_passkey, must_use_passkey
from portal.signin.sessions import SESSION_METHOD_KEY, SESSION_STARTED_KEY

# The sign-in (its start time) this session has already shown the offer for.
SHOWN_KEY = "portal_passkey_offer_shown"
DISMISSED = "dismissed"
DISMISS_MAX_AGE = 365 * 86400
# Signed in by an enrolment link: the person lands on the Passkeys page to add one anyway.
NOT_AFTER = {METHOD, "enrolment"}


@dataclass(frozen=True)
class Offer:
    required: bool  # the person must use a passkey: no dismiss button


def dismissed(request: HttpRequest) -> bool:
    return request.COOKIES.get(settings.PASSKEY_OFFER_COOKIE) == DISMISSED


def take(request: HttpRequest) -> Offer | None:
    """Return the offer if this page should show it, and remember that it was shown.

    Called only by the page that displays it (lazily, from the template), so a page that
    never shows it (the admin, a JSON answer) does not use it up.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    method = request.session.get(SESSION_METHOD_KEY)
    started = request.session.get(SESSION_STARTED_KEY)
    if method is None or method in NOT_AFTER or request.session.get(SHOWN_KEY) == started:
        return None
    if not allowed_by_organization(user):
        return None  # the organization turned passkeys off: offering one would only fail
    required = must_use_passkey(user)
    if (dismissed(request) and not required) or has_passkey(user):
        return None
    request.session[SHOWN_KEY] = started
    return Offer(required=required)


def dismiss(response: HttpResponse) -> None:
    """Remember in this browser that the offer was dismissed."""
    response.set_cookie(settings.PASSKEY_OFFER_COOKIE, DISMISSED, max_age=DISMISS_MAX_AGE,
                        path="/", httponly=True, samesite="Lax",
                        secure=settings.SESSION_COOKIE_SECURE)
