"""Domain errors of the sign-in journeys. They carry facts, never words or HTTP statuses:
``portal.signin.views.problems`` maps each one to a status and a sentence, in one table."""

from __future__ import annotations


class SignInError(Exception):
    """Base of every sign-in refusal."""

    reason = "refused"


class LinkProblem(SignInError):
    """A sign-in link that cannot be used; ``kind`` picks the page that explains it."""

    kind = "unknown"

    def __init__(self, email: str = "", binding_hash: str = "") -> None:
        super().__init__(self.kind)
        self.email = email
        # The browser that asked gets its address prefilled on the dead-link page (rule 8).
        self.binding_hash = binding_hash


class LinkUnknown(LinkProblem):
    kind = "unknown"


class LinkExpired(LinkProblem):
    kind = "expired"


class LinkAlreadyUsed(LinkProblem):
    kind = "used"


class LinkSuperseded(LinkProblem):
    kind = "superseded"


class LinkRevoked(LinkProblem):
    kind = "revoked"


class LinkRefused(LinkProblem):
    """Someone who opened the link pressed "This wasn't me": the request is dead."""

    kind = "refused"


class ApprovalLocked(LinkProblem):
    """The approval number was typed wrong too often: the request is dead."""

    kind = "approval_locked"


class AccountCannotSignIn(LinkProblem):
    """The link was fine, but the account was disabled or its organization's policy changed."""

    kind = "not_allowed"


class CodeProblem(SignInError):
    """A short code (rule 11) that did not sign anyone in; the code stays on the same page."""

    reason = "code_refused"


class CodeMalformed(CodeProblem):
    """Not six digits: a typing slip, so it costs no try."""

    reason = "code_malformed"


class CodeWrong(CodeProblem):
    """Not the code; also what every request without a code gets, so codes reveal nothing.

    ``attempts_left`` is None when this browser is not the one that asked: it may not
    spend, or learn about, that request's tries.
    """

    reason = "code_wrong"

    def __init__(self, attempts_left: int | None) -> None:
        super().__init__(self.reason)
        self.attempts_left = attempts_left


class CodeLocked(CodeProblem):
    """Too many wrong tries: the code is dead; the link in the email still works."""

    reason = "code_locked"


class ApprovalProblem(SignInError):
    """An approval number (rule 11) that approved nothing; the number box stays on the page."""

    reason = "approval_refused"


class NumberMalformed(ApprovalProblem):
    """Not one or two digits: a typing slip, so it costs no try."""

    reason = "number_malformed"


class NumberWrong(ApprovalProblem):
    """Not the number shown on the asking browser; ``attempts_left`` tries remain."""

    reason = "number_wrong"

    def __init__(self, attempts_left: int) -> None:
        super().__init__(self.reason)
        self.attempts_left = attempts_left


class NotApproved(SignInError):
    """The asking browser wants to continue, but no other device has approved its request."""

    reason = "not_approved"


class SameBrowserOnly(SignInError):
    """Strict mode: this organization's links sign in only the browser that asked."""

    reason = "same_browser_only"


class ResendTooSoon(SignInError):
    """The same browser asked for the same address again within the cool-down."""

    reason = "resend_too_soon"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class RateLimited(SignInError):
    reason = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after
