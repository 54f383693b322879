"""Domain errors of the organization admin pages: facts, never words.

``portal.orgadmin.words`` turns each into a status and a sentence, in one table.
"""

from __future__ import annotations


class OrgAdminError(Exception):
    """Base of every refusal on the organization admin pages."""

    reason = "refused"


class InvalidAddress(OrgAdminError):
    reason = "invalid_email"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AlreadyInvited(OrgAdminError):
    """An open invitation for this address exists: resend it instead."""

    reason = "already_invited"


class AlreadyInOrganization(OrgAdminError):
    """The address is already one of this organization's people."""

    reason = "already_member"

    def __init__(self, active: bool) -> None:
        super().__init__(self.reason)
        self.active = active


class BelongsElsewhere(OrgAdminError):
    """The address belongs to a person of another organization, or to Cloud Sentry staff.

    A person belongs to one organization; moving one is Cloud Sentry's job. The refusal
    never names the other organization: that would tell an admin who is a customer.
    """

    reason = "other_organization"


class DomainElsewhere(OrgAdminError):
    """The address is at an email domain another organization has verified.

    That organization's people join it (by auto-join or its own admins); an invitation
    from elsewhere would claim one of them first.
    """

    reason = "other_organization_domain"


class InvitationsRateLimited(OrgAdminError):
    reason = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(self.reason)
        self.retry_after = retry_after


class InvitationClosed(OrgAdminError):
    """Revoking or resending an invitation that was accepted or revoked already."""

    reason = "invitation_closed"


class LastAdmin(OrgAdminError):
    """The change would leave the organization without an active admin."""

    reason = "last_admin"


class NotOnYourself(OrgAdminError):
    """An admin cannot disable their own account."""

    reason = "self"


class ProtectedAccount(OrgAdminError):
    """Cloud Sentry staff and superuser accounts are changed only by Cloud Sentry."""

    reason = "protected_account"


class BadChoice(OrgAdminError):
    """A form value that is not one of the choices offered (a role, a zone)."""

    reason = "bad_choice"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoWayIn(OrgAdminError):
    """The policy would leave members no way to sign in."""

    reason = "no_way_in"


class InvitationProblem(OrgAdminError):
    """An invitation link that cannot be used; ``kind`` picks the page."""

    kind = "unknown"
    reason = "invitation_unknown"


class InvitationUnknown(InvitationProblem):
    kind = "unknown"


class InvitationExpired(InvitationProblem):
    kind = "expired"
    reason = "invitation_expired"


class InvitationUsed(InvitationProblem):
    kind = "used"
    reason = "invitation_used"


class InvitationRevoked(InvitationProblem):
    kind = "revoked"
    reason = "invitation_revoked"


class InvitationNotForYou(InvitationProblem):
    """The address now belongs elsewhere, or its account is turned off."""

    kind = "cannot_join"
    reason = "invitation_cannot_join"


class MemberUnknown(OrgAdminError):
    """No person of this organization has that id (another organization's reads the same)."""

    reason = "member_unknown"
