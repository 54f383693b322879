"""The one table of refusals on the organization admin pages: status and sentence.

Flows and services raise ``portal.orgadmin.errors``; views look the words up here.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.core.text import duration_text
from portal.orgadmin import errors


@dataclass(frozen=True)
class Page:
    status: int
    title: str
    message: str


ASK_FOR_NEW = "Ask your organization's admin for a new invitation."
CONTACT = "If the person should move to your organization, contact Cloud Sentry support."

MESSAGES: dict[type[errors.OrgAdminError], tuple[int, str]] = {
    errors.AlreadyInvited: (409, "That address already has an invitation waiting. Use "
                                 "Resend below to send it again with a fresh link."),
    errors.BelongsElsewhere: (409, "That address belongs to someone in another "
                                   "organization (a person can belong to only one). " + CONTACT),
    errors.DomainElsewhere: (409, "That address is at an email domain another organization "
                                  "has registered with Cloud Sentry, so its people join that "
                                  "organization. " + CONTACT),
    errors.InvitationClosed: (409, "That invitation was already accepted or withdrawn, so "
                                   "there is nothing to change."),
    errors.LastAdmin: (409, "Your organization needs at least one active admin. Make someone "
                            "else an admin first."),
    errors.NotOnYourself: (409, "You cannot turn off your own account. Another admin can."),
    errors.ProtectedAccount: (403, "That account is managed by Cloud Sentry. Contact Cloud "
                                   "Sentry support to change it."),
    errors.NoWayIn: (400, "Keep at least one of email sign-in links, Google or Microsoft "
                          "allowed (Google and Microsoft count only where this portal offers "
                          "them). Passkeys are added after signing in another way, so on "
                          "their own they would lock new people out."),
    errors.MemberUnknown: (404, "There is no such person in your organization."),
}


def message(error: errors.OrgAdminError) -> tuple[int, str]:
    """Return the status and the sentence for ``error``."""
    if isinstance(error, errors.InvalidAddress | errors.BadChoice):
        return 400, error.message
    if isinstance(error, errors.AlreadyInOrganization):
        if error.active:
            return 409, "That person is already a member of your organization."
        return 409, ("That person is already a member of your organization, but their "
                     "account is turned off. Turn it back on from the list below.")
    if isinstance(error, errors.InvitationsRateLimited):
        return 429, (f"You have sent many invitations in a short time. Try again in "
                     f"{duration_text(error.retry_after)}.")
    return MESSAGES.get(type(error), (400, "That change could not be made."))


INVITATION_PAGES: dict[str, Page] = {
    "unknown": Page(404, "This invitation link is not valid",
                    "The link may be incomplete: try copying the whole address from the "
                    "email. " + ASK_FOR_NEW),
    "expired": Page(410, "This invitation has expired",
                    "Invitations work for a limited time. " + ASK_FOR_NEW),
    "used": Page(410, "This invitation has already been used",
                 "Each invitation works once. If you accepted it, sign in as usual; "
                 "otherwise ask your organization's admin for a new invitation."),
    "revoked": Page(410, "This invitation was withdrawn",
                    "Your organization's admin withdrew it, or sent a newer one. "
                    + ASK_FOR_NEW),
    "cannot_join": Page(409, "This invitation cannot be used",
                        "The address it was sent to can no longer join this organization "
                        "(it belongs to another organization now, or its account was turned "
                        "off). Ask your organization's admin, who can contact Cloud Sentry "
                        "support."),
}


def invitation_page(problem: errors.InvitationProblem) -> Page:
    return INVITATION_PAGES.get(problem.kind, INVITATION_PAGES["unknown"])
