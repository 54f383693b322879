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
    PasskeyProblem,
    PasskeyRejected,
    PasskeyUnknown,
)
from portal.signin.errors import (
    AccountCannotSignIn,
    CodeLocked,
    CodeMalformed,
    CodeProblem,
    CodeWrong,
    LinkAlreadyUsed,
    LinkExpired,
    LinkProblem,
    LinkRevoked,
    LinkSuperseded,
    LinkUnknown,
    RateLimited,
    ResendTooSoon,
)


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
