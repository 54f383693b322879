"""The OpenID providers the portal federates with, as configured in settings.

The environment is read once, in ``portal.config.env``; ``settings.OIDC_PROVIDERS`` carries
the result. This module turns it into small immutable records and answers the two questions
pages and flows ask: which providers can be offered here, and what is provider ``name``?
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from portal.accounts.models import Organization

GOOGLE = "google"
MICROSOFT = "microsoft"

# Display order on the sign-in page, and the only provider names the URLs accept.
KNOWN = (GOOGLE, MICROSOFT)
LABELS = {GOOGLE: "Google", MICROSOFT: "Microsoft"}


@dataclass(frozen=True)
class Provider:
    """One OpenID provider: who it is, where its discovery document is, and our client."""

    name: str
    label: str
    discovery_url: str
    client_id: str
    client_secret: str = ""
    scope: str = "openid email profile"

    @property
    def configured(self) -> bool:
        """Return whether the operator set this provider up (a client id and a discovery URL)."""
        return bool(self.client_id and self.discovery_url)

    @property
    def button_text(self) -> str:
        return f"Sign in with {self.label}"


def get_provider(name: str) -> Provider | None:
    """Return the provider called ``name`` (configured or not), or None if there is none."""
    if name not in KNOWN:
        return None
    raw = getattr(settings, "OIDC_PROVIDERS", {}).get(name) or {}
    return Provider(
        name=name,
        label=LABELS[name],
        discovery_url=str(raw.get("discovery_url") or ""),
        client_id=str(raw.get("client_id") or ""),
        client_secret=str(raw.get("client_secret") or ""),
    )


def configured_providers(organization: Organization | None = None) -> list[Provider]:
    """Return the providers to offer, in display order.

    On the general sign-in page nobody knows the organization yet, so every configured
    provider is offered and the organization's policy is enforced at the callback. Where
    the organization is known, only the providers its policy allows are offered.
    """
    found = [p for p in (get_provider(name) for name in KNOWN) if p is not None and p.configured]
    if organization is not None:
        found = [p for p in found if organization.allows(p.name)]
    return found
