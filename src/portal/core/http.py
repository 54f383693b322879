"""Small helpers for reading requests safely."""

from __future__ import annotations

import ipaddress

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def client_ip(request: HttpRequest) -> str:
    """Return the peer address. Behind a proxy, gunicorn's forwarded-allow-ips sets it."""
    raw = request.META.get("REMOTE_ADDR", "") or ""
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return ""


def user_agent(request: HttpRequest) -> str:
    return (request.META.get("HTTP_USER_AGENT", "") or "")[:400]


def safe_next(raw: str | None, default: str = "/") -> str:
    """Return ``raw`` if it is a same-site relative path, else ``default``.

    Only paths that start with one ``/`` qualify: ``//evil.example``, ``/\\evil.example``,
    absolute URLs and anything with a scheme or control characters land on ``default``.
    """
    if not raw or len(raw) > 2000:
        return default
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw) or "\\" in raw:
        return default
    if not raw.startswith("/") or raw.startswith("//"):
        return default
    if not url_has_allowed_host_and_scheme(raw, allowed_hosts=set(), require_https=False):
        return default
    return raw


def describe_agent(agent: str) -> str:
    """Return a short "Browser on OS" for pages and emails, from a User-Agent string."""
    a = agent or ""
    browser = ("Edge" if "Edg/" in a else "Opera" if "OPR/" in a else "Firefox" if "Firefox/" in a
               else "Chrome" if ("Chrome/" in a or "Chromium/" in a) else "Safari"
               if "Safari/" in a else "")
    system = ("Windows" if "Windows" in a else "Android" if "Android" in a else "iPhone"
              if "iPhone" in a else "iPad" if "iPad" in a else "macOS" if "Mac OS X" in a
              else "Linux" if "Linux" in a else "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "an unknown browser"
