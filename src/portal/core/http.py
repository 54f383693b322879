"""Small helpers for reading requests safely: who sent it, and where it may lead."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from portal.config.env import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(raw: str) -> IPAddress | None:
    """Parse one address, or None. An IPv4-mapped IPv6 address counts as its IPv4 self."""
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress | None, proxies: Iterable[IPNetwork]) -> bool:
    return address is not None and any(address in network for network in proxies)


def resolve_client(peer: str, forwarded_for: str, proxies: Iterable[IPNetwork]) -> str:
    """Return the client's address: the rightmost hop that no trusted proxy vouches for.

    The walk starts at the connection's peer. While the current address is a trusted proxy
    (one of ``proxies``), the X-Forwarded-For entry to its left is the address that proxy
    saw, so it becomes the current one. The first untrusted address is the client: entries
    further left were written by that client and are whatever it chose. A malformed entry
    ends the walk at the trusted proxy that passed it on, so garbage never yields an
    address an attacker picked. Returns "" only when the peer itself is not an address.
    """
    proxies = tuple(proxies)
    current = _address(peer or "")
    if current is None:
        return ""
    hops = forwarded_for.split(",") if forwarded_for else []
    for hop in reversed(hops):
        if not _trusted(current, proxies):
            break
        previous = _address(hop)
        if previous is None:
            break
        current = previous
    return str(current)


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Say whether the connection comes from a proxy named in FORWARDED_ALLOW_IPS."""
    return _trusted(_address(request.META.get("REMOTE_ADDR", "") or ""),
                    settings.FORWARDED_ALLOW_IPS)


def client_ip(request: HttpRequest) -> str:
    """Return the address of the client: what rate limits count, the audit trail and emails show.

    X-Forwarded-For is believed only as far as trusted proxies (FORWARDED_ALLOW_IPS) vouch
    for it (``resolve_client``); from anyone else the connection's own address counts, so
    a client cannot choose the address it is counted under.
    """
    return resolve_client(request.META.get("REMOTE_ADDR", "") or "",
                          request.META.get("HTTP_X_FORWARDED_FOR", "") or "",
                          settings.FORWARDED_ALLOW_IPS)


# C0 controls and DEL: PostgreSQL refuses NUL in text, and a CR/LF or escape sequence in a
# stored header would forge lines when the audit trail is exported or printed.
_CONTROL = dict.fromkeys([*range(32), 127], "\ufffd")


def printable(text: str) -> str:
    """Return ``text`` with every control character replaced by U+FFFD, safe to store."""
    return text.translate(_CONTROL)


def user_agent(request: HttpRequest) -> str:
    """Return the client's User-Agent, at most 400 characters, control characters replaced."""
    return printable((request.META.get("HTTP_USER_AGENT", "") or "")[:400])


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
