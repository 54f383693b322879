"""Who the portal is to an authenticator: relying party id and origin, from PORTAL_BASE_URL.

A passkey is bound by the browser to the RP id (the host name) and every assertion names
the origin it was made on; the portal accepts exactly the one origin it is served from, so
a look-alike site that relays the ceremony gets assertions that do not verify (phishing).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings


def rp_id() -> str:
    """Return the relying party id: the host name of PORTAL_BASE_URL, without port."""
    return urlsplit(settings.PORTAL_BASE_URL).hostname or ""


def origin() -> str:
    """Return the one origin assertions must come from: scheme://host[:port]."""
    parts = urlsplit(settings.PORTAL_BASE_URL)
    return f"{parts.scheme}://{parts.netloc}".lower()


def rp_name() -> str:
    return str(settings.PORTAL_BRAND)
