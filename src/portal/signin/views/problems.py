"""Every sign-in refusal in words and an HTTP status, in one table.

Domain errors (``portal.signin.errors``) carry facts: which link problem, how many tries
are left, how long to wait. This module is the one place that turns them into a status,
a heading and a sentence, so each title is written once and every page that shows the
same refusal says the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from portal.passkeys.errors import (
    ChallengeExpired,
    ChallengeMissing,
    EnrolmentLinkExpired,
    EnrolmentLinkProblem,
    EnrolmentLinkUsed,
    PasskeyAccountCannotSignIn,
    PasskeyAlreadyRegistered,
    PasskeyMalformed,
    PasskeyNameMissing,
    PasskeyNeedsRecentSignIn,
    PasskeyNotAllowed,
    PasskeyProblem,
    PasskeyRejected,
    PasskeyUnknown,
)
from portal.signin.errors import (
    AccountCannotSignIn,
    ApprovalLocked,
    ApprovalProblem,
    CodeLocked,
    CodeMalformed,
    CodeProblem,
    CodeWrong,
    LinkAlreadyUsed,
    LinkExpired,
    LinkProblem,
    LinkRefused,
    LinkRevoked,
    LinkSuperseded,
    LinkUnknown,
    NumberMalformed,
    NumberWrong,
    RateLimited,
    ResendTooSoon,
)
from portal.signin.flows.magic_link import MAX_APPROVAL_ATTEMPTS
from portal.signin.oidc import errors as federation
from portal.signin.oidc.errors import FederationError


@dataclass(frozen=True)
class Page:
    status: int
    title: str
    message: str


_FRESH = "Ask for a fresh one below; it arrives in a minute or so."

# Dead links (rule 8): one page, its words chosen by the problem's kind.
LINK_PAGES: dict[type[LinkProblem], Page] = {
    LinkExpired: Page(410, "This link has expired",
                      "Sign-in links work for a short time, so that an old email cannot be "
                      "used to get in. " + _FRESH),
    LinkAlreadyUsed: Page(410, "This link has already been used",
                          "Each sign-in link works once. If you signed in a moment ago, you "
                          "are probably still signed in on that browser. Otherwise, ask for a "
                          "fresh link below."),
    LinkSuperseded: Page(410, "A newer link was sent",
                         "Another sign-in link was asked for this address after this one, so "
                         "only the newest email works. Look for the latest email from us, or "
                         "ask for a fresh link below."),
    LinkRefused: Page(410, "This sign-in was stopped",
                      "Someone who opened this link said \"This wasn't me\", so the "
                      "link and its code no longer work and nobody was signed in with them. "
                      "If you do want to sign in, ask for a fresh link below."),
    ApprovalLocked: Page(410, "Too many wrong numbers",
                         "The number typed did not match the one on the screen that asked, "
                         f"{MAX_APPROVAL_ATTEMPTS} times, so this sign-in was stopped and "
                         "nobody was signed in. If it was you, ask for a fresh link below."),
    LinkRevoked: Page(410, "This link no longer works",
                      "Someone signed in to this account after this link was sent, so the "
                      "older links were switched off. If that was not you, tell your IT team."),
    AccountCannotSignIn: Page(403, "This account cannot sign in",
                              "The account has been turned off, or your organization no longer "
                              "allows sign-in by email. Your organization's IT lead or our "
                              "support team can help."),
    LinkUnknown: Page(404, "This link is not valid",
                      "The address may have been cut short or mistyped when it was copied. "
                      "Try opening the link straight from the email, or ask for a fresh one "
                      "below."),
}
LINK_KINDS: dict[str, type[LinkProblem]] = {cls.kind: cls for cls in LINK_PAGES}

WRONG_CODE = "That code is not right. Check the code in the newest email and try again."


def minutes(seconds: int) -> str:
    """Say a wait in whole minutes, rounded up: "1 minute", "15 minutes"."""
    count = max(1, math.ceil(seconds / 60))
    return f"{count} minute{'' if count == 1 else 's'}"


def link_page(kind: str) -> Page:
    """Return the page for a dead link of ``kind`` (unknown kinds read as "not valid")."""
    return LINK_PAGES[LINK_KINDS.get(kind, LinkUnknown)]


def code_message(problem: CodeProblem) -> str:
    """Return what the code box says after ``problem``."""
    if isinstance(problem, CodeMalformed):
        return "Enter the 6 digits from the email, for example 123 456."
    if isinstance(problem, CodeLocked):
        return ("Too many wrong codes, so this code no longer works. The link in the same "
                "email still does, or ask for a new email below.")
    if isinstance(problem, CodeWrong) and problem.attempts_left is not None:
        tries = "1 try" if problem.attempts_left == 1 else f"{problem.attempts_left} tries"
        return f"{WRONG_CODE} You have {tries} left."
    return WRONG_CODE


def number_message(problem: ApprovalProblem) -> str:
    """Return what the number box on the other device's page says after ``problem``."""
    if isinstance(problem, NumberMalformed):
        return "Type the 2-digit number shown on the screen that asked, for example 42."
    if isinstance(problem, NumberWrong):
        tries = "1 try" if problem.attempts_left == 1 else f"{problem.attempts_left} tries"
        return (f"That number does not match. Look at the screen that asked and type the "
                f"number shown there. You have {tries} left.")
    return "That number does not match."


# Strict mode refusing "Sign in on this device" (the page still offers the other choices).
SAME_BROWSER_ONLY = Page(403, "This device cannot sign in with the link",
                         "Your organization allows email links to sign in only the browser "
                         "that asked for them. Approve the sign-in there with its number, "
                         "or press \"This wasn't me\".")
# "I've approved it, continue" pressed before any device approved (or in another browser).
NOT_APPROVED = Page(409, "Not approved yet",
                    "Open the link on your other device, choose \"Sign in on the device "
                    "that asked\" and type the number shown here. Then continue, or use "
                    "the code from the email.")

# The asking tab's live status, by ``WaitingStatus.state``: one sentence each.
WAITING_WORDS: dict[str, str] = {
    "waiting": "Waiting for the link to be opened.",
    "approved": "Approved on your other device. Signing you in here; if nothing happens, "
                "press \"I've approved it, continue\".",
    "refused": "Stopped: someone pressed \"This wasn't me\" on the device "
               "that opened the link. Nobody was signed in. Send another link if you still "
               "want to sign in.",
    "approval_locked": f"Stopped: the number was typed wrong {MAX_APPROVAL_ATTEMPTS} times "
                       "on the other device. Nobody was signed in. Send another link to try "
                       "again.",
    "expired": "The link and its code have expired. Send another link to sign in.",
    "used": "The link was used to sign in on another device, so it no longer works here.",
    "superseded": "A newer link was asked for this address, so this one no longer works. "
                  "Use the newest email, or send another link.",
    "revoked": "Someone signed in to this account since, so this link no longer works.",
}
NOT_WAITING = "This browser is not waiting for a sign-in link."


def waiting_words(state: str) -> str:
    """Return the sentence the asking tab shows for ``state`` (unknown: not waiting)."""
    return WAITING_WORDS.get(state, NOT_WAITING)


def wait_page(error: RateLimited | ResendTooSoon, *, what: str) -> Page:
    """Return the page for a refusal that passes with time: one figure, said once."""
    if isinstance(error, ResendTooSoon):
        seconds = error.retry_after
        return Page(429, "A link is already on its way",
                    f"We sent a sign-in link a moment ago. You can ask for another in "
                    f"{seconds} second{'' if seconds == 1 else 's'}; the one already sent "
                    "keeps working until then.")
    wait = minutes(error.retry_after)
    return Page(429, f"Please wait {wait}",
                f"There have been several {what} in a short time, so we paused them. You "
                f"can try again in {wait}.")


UNAVAILABLE = Page(503, "Email sign-in is having trouble",
                   "We could not finish that just now. Please try again in a few minutes.")


# Passkeys: what the sign-in page and the Passkeys page say when a ceremony is refused.
_EMAIL_INSTEAD = "You can always sign in with an email link instead."
PASSKEY_PAGES: dict[type[PasskeyProblem], Page] = {
    ChallengeMissing: Page(400, "Please try that again",
                           "That passkey request was already used or never started here. "
                           "Press the button again to start a fresh one."),
    ChallengeExpired: Page(400, "That took too long",
                           "Passkey requests work for 5 minutes. Press the button again to "
                           "start a fresh one."),
    PasskeyMalformed: Page(400, "Your browser sent something we could not read",
                           "Try again, or use another browser. " + _EMAIL_INSTEAD),
    PasskeyUnknown: Page(400, "This passkey is not registered here",
                         "It may have been removed, or it belongs to another site. "
                         + _EMAIL_INSTEAD),
    PasskeyRejected: Page(400, "This passkey could not be verified",
                          "Your device's answer did not check out for this site, so nobody "
                          "was signed in. Try again; " + _EMAIL_INSTEAD[0].lower()
                          + _EMAIL_INSTEAD[1:]),
    PasskeyAlreadyRegistered: Page(409, "This passkey is already registered",
                                   "This device's passkey is already on your list."),
    PasskeyAccountCannotSignIn: Page(
        403, "This account cannot sign in",
        "The account has been turned off. Your organization's IT lead or our support team "
        "can help."),
    PasskeyNotAllowed: Page(
        403, "Your organization does not allow passkeys",
        "Your organization's admin has turned passkey sign-in off, so nobody was signed in. "
        "Sign in another way your organization allows, such as an email link."),
    PasskeyNameMissing: Page(400, "Give the passkey a name",
                             "A name helps you tell your passkeys apart, for example "
                             "\"Work laptop\"."),
    PasskeyNeedsRecentSignIn: Page(
        403, "Please sign in again first",
        "Adding or removing a passkey needs a sign-in in the last few minutes, so nobody "
        "can change it from a computer you left signed in. Nothing was changed."),
    EnrolmentLinkProblem: Page(404, "This enrolment link is not valid",
                               "Check that you used the whole link, or ask Cloud Sentry "
                               "support for a new one."),
    EnrolmentLinkUsed: Page(410, "This enrolment link has already been used",
                            "Each enrolment link works once. Sign in with your passkey, or "
                            "ask Cloud Sentry support for a new link."),
    EnrolmentLinkExpired: Page(410, "This enrolment link has expired",
                               "Ask Cloud Sentry support for a new one."),
}


def passkey_page(problem: PasskeyProblem) -> Page:
    """Return the words for a refused passkey ceremony (unknown kinds read as "not verified")."""
    return PASSKEY_PAGES.get(type(problem), PASSKEY_PAGES[PasskeyRejected])


# --- Sign in with Google / Microsoft ---------------------------------------------------------
# Every refusal lands on the sign-in page, which always offers the email link. Sentences never
# echo what a provider sent beyond the person's own address, and never say more than the
# person can act on. ``{provider}`` is the provider's label, ``{email}`` the address.
EMAIL_LINK_HINT = "use an email link instead"
FEDERATION_MESSAGES: dict[type[FederationError], str] = {
    federation.FederationError:
        "{provider} could not sign you in. Try again, or " + EMAIL_LINK_HINT + ".",
    federation.ProviderNotConfigured:
        "Sign in with {provider} is not available here. Please " + EMAIL_LINK_HINT + ".",
    federation.ProviderUnavailable:
        "{provider} is not answering right now. Try again in a few minutes, or "
        + EMAIL_LINK_HINT + ".",
    federation.ConsentBlocked:
        "Your organization's IT policy does not let this portal use your {provider} "
        "account yet. Ask your IT administrator to approve it, or "
        + EMAIL_LINK_HINT + ".",
    federation.SignInCancelled:
        "Signing in with {provider} was cancelled. You can try again, or "
        + EMAIL_LINK_HINT + ".",
    federation.StateMismatch:
        "That sign-in could not be finished here: it was started in another browser, "
        "or that page was already used. Please start again.",
    federation.SignInStoreUnavailable:
        "Signing in with {provider} is having trouble on our side just now. Please "
        "try again in a few minutes.",
    federation.SignInTooSlow:
        "That sign-in took too long to finish. Please start again.",
    federation.CodeRejected:
        "{provider} did not confirm the sign-in. Please start again.",
    federation.InvalidIdToken:
        "{provider} sent a sign-in we could not verify, so we did not use it. "
        "Please start again, or " + EMAIL_LINK_HINT + ".",
    federation.EmailNotVerified:
        "{provider} has not verified the email address of that account. Verify it "
        "with {provider} first, or " + EMAIL_LINK_HINT + ".",
    federation.MissingEmail:
        "{provider} did not tell us the email address of that account, so we cannot "
        "tell who you are. Please " + EMAIL_LINK_HINT + ".",
    federation.DomainNotRegistered:
        "That {provider} account is not part of a Google Workspace domain registered "
        "with this portal. Ask your organization's admin to register it, or "
        + EMAIL_LINK_HINT + ".",
    federation.WorkspaceNotPinned:
        "That {provider} account belongs to a Google Workspace your organization has "
        "not registered with this portal. Sign in with your organization's own "
        "Workspace account, or " + EMAIL_LINK_HINT + ".",
    federation.TenantNotRegistered:
        "That {provider} account belongs to a Microsoft 365 organization that is not "
        "registered with this portal. Ask your organization's admin to register it, or "
        + EMAIL_LINK_HINT + ".",
    federation.OrganizationMismatch:
        "That {provider} account belongs to a different organization than your portal "
        "account. Please " + EMAIL_LINK_HINT + ".",
    federation.AccountDisabled:
        "Your portal account is turned off, so it cannot sign in. Ask your "
        "organization's admin to turn it back on.",
    federation.OrganizationDisabled:
        "Your organization's access to this portal is turned off, so no one there "
        "can sign in. Your organization's admin can ask Cloud Sentry to turn it back on.",
    federation.MethodNotAllowed:
        "Your organization does not allow Sign in with {provider}. Please "
        + EMAIL_LINK_HINT + ".",
    federation.StaffUseEmailLink:
        "Accounts without a customer organization, such as Cloud Sentry staff, sign "
        "in with an email link, not with {provider}.",
    federation.NotEligible:
        "No portal account uses {email}. Ask your organization's admin to invite you, "
        "or " + EMAIL_LINK_HINT + " with the address you were invited with.",
}


def federation_message(error: FederationError) -> str:
    """Return the sentence for ``error``: its own class's, else its nearest parent's."""
    for cls in type(error).__mro__:
        if cls in FEDERATION_MESSAGES:
            return FEDERATION_MESSAGES[cls].format(
                provider=error.provider, email=error.email or "that address")
    raise LookupError(type(error).__name__)
