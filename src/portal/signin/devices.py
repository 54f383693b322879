"""Browsers that have signed in before: a signed, long-lived device cookie (rule 9).

Per-address limits have a cost: a stranger who asks for links to alice@… five times
spends Alice's allowance, and behind one office address everyone shares the per-IP
allowance. A browser that has signed in as an address carries a cookie saying so, signed
with the server's key; a request for that address from that browser counts against an
allowance of its own instead (``flows.magic_link._request_limits``). Nobody can forge the
cookie, and having one proves only that this browser signed in as the address before,
which is exactly what earns it a separate allowance.

The cookie holds a random device id and keyed digests of the addresses, never the
addresses themselves: a shared computer's cookie jar need not say who used it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import salted_hmac

SALT = "portal.signin.devices"
MAX_AGE = 365 * 86400
MAX_ADDRESSES = 5  # a family laptop; more than this and the oldest are forgotten
_PENDING_ATTR = "_portal_device_cookie"


def _digest(address: str) -> str:
    return salted_hmac(SALT + ".address", address, algorithm="sha256").hexdigest()[:32]


def _read(request: HttpRequest) -> tuple[str, list[str]]:
    raw = request.COOKIES.get(settings.SIGNIN_DEVICE_COOKIE, "")
    if not raw or len(raw) > 2000:
        return "", []
    try:
        data = signing.loads(raw, salt=SALT, max_age=MAX_AGE)
        device, digests = str(data["d"]), [str(d) for d in data["a"]][:MAX_ADDRESSES]
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return "", []
    return device, digests


def vouched_device(request: HttpRequest, address: str) -> str:
    """Return this browser's device id if it has signed in as ``address`` before, else ""."""
    device, digests = _read(request)
    return device if device and _digest(address) in digests else ""


def remember_device(request: HttpRequest, address: str) -> str:
    """Note that this browser signed in as ``address``; return its device id.

    The middleware sets the cookie. A browser without a (valid) cookie gets a new id.
    """
    device, digests = _read(request)
    device = device or secrets.token_urlsafe(16)
    digest = _digest(address)
    kept = [d for d in digests if d != digest][-(MAX_ADDRESSES - 1):]
    digests = [*kept, digest]
    value = signing.dumps({"d": device, "a": digests}, salt=SALT)
    setattr(request, _PENDING_ATTR, value)
    return device


class DeviceCookieMiddleware:
    """Write the device cookie a sign-in asked for, on whatever response ends that request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        value = getattr(request, _PENDING_ATTR, None)
        if value:
            response.set_cookie(settings.SIGNIN_DEVICE_COOKIE, value, max_age=MAX_AGE,
                                path="/", httponly=True, samesite="Lax",
                                secure=settings.SESSION_COOKIE_SECURE)
        return response
