"""Domain errors of Sign in with Google / Microsoft.

Each error carries a ``reason`` code for the audit trail and the facts its sentence needs;
the sentence itself, for the person who lands back on the sign-in page, is in
``portal.signin.views.problems.FEDERATION_MESSAGES``.
"""

from __future__ import annotations

from typing import Any

from portal.signin.errors import SignInError


class FederationError(SignInError):
    """Base of every refusal of a federated sign-in."""

    reason = "federation_failed"
    next_url = "/"  # where the person was going; the sign-in page keeps it

    def __init__(self, provider: str, *, reason: str | None = None, email: str = "",
                 user: Any = None, organization: Any = None, **detail: Any) -> None:
        self.provider = provider  # the provider's label, e.g. "Google"
        if reason:
            self.reason = reason
        self.email = email
        self.user = user
        self.organization = organization
        self.detail = detail
        super().__init__(self.reason)


class ProviderNotConfigured(FederationError):
    reason = "provider_not_configured"


class ProviderUnavailable(FederationError):
    reason = "provider_unavailable"


class ConsentBlocked(FederationError):
    """The provider refused because an administrator has not approved the portal."""

    reason = "consent_blocked"


class SignInCancelled(FederationError):
    reason = "cancelled"


class ProviderRefused(FederationError):
    """The provider answered with an error we have no more specific sentence for."""

    reason = "provider_error"


class StateMismatch(FederationError):
    """The callback does not belong to a sign-in this browser started, or was used already."""

    reason = "state_mismatch"


class SignInStoreUnavailable(FederationError):
    """The shared store that makes a callback single-use (the cache) cannot be reached.

    Refused rather than let through: without the store a copied callback could be replayed.
    """

    reason = "store_unavailable"


class SignInTooSlow(FederationError):
    reason = "sign_in_expired"


class CodeRejected(FederationError):
    """The token endpoint refused our code (used already, expired, or not ours)."""

    reason = "code_rejected"


class InvalidIdToken(FederationError):
    """The ID token failed a check; ``reason`` names which (``id_token_wrong_audience``…)."""

    reason = "id_token_invalid"


class EmailNotVerified(FederationError):
    reason = "email_not_verified"


class MissingEmail(FederationError):
    reason = "no_email"


class DomainNotRegistered(FederationError):
    reason = "domain_not_registered"


class WorkspaceNotPinned(FederationError):
    """The organization pinned its Workspace domains; the token's ``hd`` is none of them."""

    reason = "workspace_not_pinned"


class TenantNotRegistered(FederationError):
    reason = "tenant_not_registered"


class OrganizationMismatch(FederationError):
    reason = "organization_mismatch"


class AccountDisabled(FederationError):
    reason = "user_disabled"


class OrganizationDisabled(FederationError):
    reason = "organization_disabled"


class MethodNotAllowed(FederationError):
    reason = "method_not_allowed"


class StaffUseEmailLink(FederationError):
    """Staff belong to no customer organization, so no tenant or domain vouches for them."""

    reason = "no_organization"


class NotEligible(FederationError):
    reason = "unknown_address"
