"""Domain errors of Sign in with Google / Microsoft.

Each error carries a ``reason`` code for the audit trail and a ``message`` sentence for the
person, who lands back on the sign-in page where the email-link option is always offered.
Messages never echo what a provider sent us beyond the person's own address, and never say
more than the person can act on.
"""

from __future__ import annotations

from typing import Any

from portal.signin.errors import SignInError

EMAIL_LINK_HINT = "use an email link instead"


class FederationError(SignInError):
    """Base of every refusal of a federated sign-in."""

    reason = "federation_failed"
    next_url = "/"  # where the person was going; the sign-in page keeps it
    template = "{provider} could not sign you in. Try again, or " + EMAIL_LINK_HINT + "."

    def __init__(self, provider: str, *, reason: str | None = None, email: str = "",
                 user: Any = None, organization: Any = None, **detail: Any) -> None:
        self.provider = provider  # the provider's label, e.g. "Google"
        if reason:
            self.reason = reason
        self.email = email
        self.user = user
        self.organization = organization
        self.detail = detail
        super().__init__(f"{self.reason}: {self.message}")

    @property
    def message(self) -> str:
        return self.template.format(provider=self.provider, email=self.email or "that address")


class ProviderNotConfigured(FederationError):
    reason = "provider_not_configured"
    template = "Sign in with {provider} is not available here. Please " + EMAIL_LINK_HINT + "."


class ProviderUnavailable(FederationError):
    reason = "provider_unavailable"
    template = ("{provider} is not answering right now. Try again in a few minutes, or "
                + EMAIL_LINK_HINT + ".")


class ConsentBlocked(FederationError):
    """The provider refused because an administrator has not approved the portal."""

    reason = "consent_blocked"
    template = ("Your organization's IT policy does not let this portal use your {provider} "
                "account yet. Ask your IT administrator to approve it, or "
                + EMAIL_LINK_HINT + ".")


class SignInCancelled(FederationError):
    reason = "cancelled"
    template = ("Signing in with {provider} was cancelled. You can try again, or "
                + EMAIL_LINK_HINT + ".")


class ProviderRefused(FederationError):
    """The provider answered with an error we have no more specific sentence for."""

    reason = "provider_error"


class StateMismatch(FederationError):
    """The callback does not belong to a sign-in this browser started, or was used already."""

    reason = "state_mismatch"
    template = ("That sign-in could not be finished here: it was started in another browser, "
                "or that page was already used. Please start again.")


class SignInStoreUnavailable(FederationError):
    """The shared store that makes a callback single-use (the cache) cannot be reached.

    Refused rather than let through: without the store a copied callback could be replayed.
    """

    reason = "store_unavailable"
    template = ("Signing in with {provider} is having trouble on our side just now. Please "
                "try again in a few minutes.")


class SignInTooSlow(FederationError):
    reason = "sign_in_expired"
    template = "That sign-in took too long to finish. Please start again."


class CodeRejected(FederationError):
    """The token endpoint refused our code (used already, expired, or not ours)."""

    reason = "code_rejected"
    template = "{provider} did not confirm the sign-in. Please start again."


class InvalidIdToken(FederationError):
    """The ID token failed a check; ``reason`` names which (``id_token_wrong_audience``…)."""

    reason = "id_token_invalid"
    template = ("{provider} sent a sign-in we could not verify, so we did not use it. "
                "Please start again, or " + EMAIL_LINK_HINT + ".")


class EmailNotVerified(FederationError):
    reason = "email_not_verified"
    template = ("{provider} has not verified the email address of that account. Verify it "
                "with {provider} first, or " + EMAIL_LINK_HINT + ".")


class MissingEmail(FederationError):
    reason = "no_email"
    template = ("{provider} did not tell us the email address of that account, so we cannot "
                "tell who you are. Please " + EMAIL_LINK_HINT + ".")


class DomainNotRegistered(FederationError):
    reason = "domain_not_registered"
    template = ("That {provider} account is not part of a Google Workspace domain registered "
                "with this portal. Ask your organization's admin to register it, or "
                + EMAIL_LINK_HINT + ".")


class WorkspaceNotPinned(FederationError):
    """The organization pinned its Workspace domains; the token's ``hd`` is none of them."""

    reason = "workspace_not_pinned"
    template = ("That {provider} account belongs to a Google Workspace your organization has "
                "not registered with this portal. Sign in with your organization's own "
                "Workspace account, or " + EMAIL_LINK_HINT + ".")


class TenantNotRegistered(FederationError):
    reason = "tenant_not_registered"
    template = ("That {provider} account belongs to a Microsoft 365 organization that is not "
                "registered with this portal. Ask your organization's admin to register it, or "
                + EMAIL_LINK_HINT + ".")


class OrganizationMismatch(FederationError):
    reason = "organization_mismatch"
    template = ("That {provider} account belongs to a different organization than your portal "
                "account. Please " + EMAIL_LINK_HINT + ".")


class AccountDisabled(FederationError):
    reason = "user_disabled"
    template = ("Your portal account is turned off, so it cannot sign in. Ask your "
                "organization's admin to turn it back on.")


class OrganizationDisabled(FederationError):
    reason = "organization_disabled"
    template = ("Your organization's access to this portal is turned off, so no one there "
                "can sign in. Your organization's admin can ask Cloud Sentry to turn it back on.")


class MethodNotAllowed(FederationError):
    reason = "method_not_allowed"
    template = ("Your organization does not allow Sign in with {provider}. Please "
                + EMAIL_LINK_HINT + ".")


class StaffUseEmailLink(FederationError):
    """Staff belong to no customer organization, so no tenant or domain vouches for them."""

    reason = "no_organization"
    template = ("Accounts without a customer organization, such as Cloud Sentry staff, sign "
                "in with an email link, not with {provider}.")


class NotEligible(FederationError):
    reason = "unknown_address"
    template = ("No portal account uses {email}. Ask your organization's admin to invite you, "
                "or " + EMAIL_LINK_HINT + " with the address you were invited with.")
