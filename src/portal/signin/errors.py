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


class RateLimited(SignInError):
    reason = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after
