"""The OpenID providers the portal federates with, as configured in settings.

The environment is read once, in ``portal.config.env``; ``settings.OIDC_PROVIDERS`` carries
the result. This module turns it into small immutable records and answers the two questions
pages and flows ask: which providers can be offered here, and what is provider ``name``?
``offer()`` answers the third, for every page and help text that mentions federated sign-in:
what may it name, so that it never promises a button the sign-in page does not have?
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
# The product a customer's IT runs, as help texts name it ("if your company uses …").
SUITES = {GOOGLE: "Google Workspace", MICROSOFT: "Microsoft 365"}


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

    @property
    def suite(self) -> str:
        return SUITES[self.name]


def join_or(words: list[str]) -> str:
    """Join ``words`` as a sentence lists choices: "A", "A or B", "A, B or C"."""
    if len(words) < 2:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


@dataclass(frozen=True)
class Offer:
    """The federated sign-in this portal offers, worded for pages and help texts.

    False when no provider is configured, so ``{% if federation %}`` leaves out every
    sentence about Google and Microsoft, and names only the configured ones otherwise.
    """

    providers: tuple[Provider, ...]

    def __bool__(self) -> bool:
        return bool(self.providers)

    @property
    def names(self) -> str:
        """Name the configured providers: "Google or Microsoft", "Google", or "" for none."""
        return join_or([p.label for p in self.providers])

    @property
    def suites(self) -> str:
        """Name their products: "Google Workspace or Microsoft 365", "Microsoft 365", or ""."""
        return join_or([p.suite for p in self.providers])

    @property
    def methods(self) -> str:
        """Name every way in: "email link, Google or Microsoft", or just "email link"."""
        return join_or(["email link", *(p.label for p in self.providers)])

    @property
    def google(self) -> bool:
        """Say whether Sign in with Google is offered."""
        return any(p.name == GOOGLE for p in self.providers)

    @property
    def microsoft(self) -> bool:
        """Say whether Sign in with Microsoft is offered."""
        return any(p.name == MICROSOFT for p in self.providers)


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


def offer() -> Offer:
    """Return what pages may say about federated sign-in: only the configured providers."""
    return Offer(tuple(configured_providers()))
