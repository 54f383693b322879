"""Domain errors of the sign-in journeys; views map each to a page in one place."""

from __future__ import annotations


class SignInError(Exception):
    """Base of every sign-in refusal."""

    reason = "refused"


class LinkProblem(SignInError):
    """A sign-in link that cannot be used; ``kind`` picks the page that explains it."""

    kind = "unknown"
    status = 404

    def __init__(self, email: str = "", binding_hash: str = "") -> None:
        super().__init__(self.kind)
        self.email = email
        # The browser that asked gets its address prefilled on the dead-link page (rule 8).
        self.binding_hash = binding_hash


class LinkUnknown(LinkProblem):
    kind = "unknown"
    status = 404


class LinkExpired(LinkProblem):
    kind = "expired"
    status = 410


class LinkAlreadyUsed(LinkProblem):
    kind = "used"
    status = 410


class LinkSuperseded(LinkProblem):
    kind = "superseded"
    status = 410


class LinkRevoked(LinkProblem):
    kind = "revoked"
    status = 410


class AccountCannotSignIn(LinkProblem):
    """The link was fine, but the account was disabled or its organization's policy changed."""

    kind = "not_allowed"
    status = 403


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


class RateLimited(SignInError):
    reason = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after
