"""Domain errors of the passkey journeys: facts only. ``portal.signin.views.problems``
turns each into a status and words (``PASSKEY_PAGES``), in the one table of refusals."""

from __future__ import annotations

from portal.signin.errors import SignInError


class PasskeyProblem(SignInError):
    """A passkey ceremony that did not complete; ``reason`` goes into the audit row."""

    reason = "passkey_refused"


class ChallengeMissing(PasskeyProblem):
    """No challenge waits in this session: never asked for, or already used once."""

    reason = "challenge_missing"


class ChallengeExpired(PasskeyProblem):
    """The challenge was issued longer ago than its lifetime."""

    reason = "challenge_expired"


class PasskeyMalformed(PasskeyProblem):
    """What the browser sent is not a WebAuthn credential at all."""

    reason = "malformed"


class PasskeyUnknown(PasskeyProblem):
    """No passkey with this credential id is registered here (or it was removed)."""

    reason = "unknown_credential"


class PasskeyRejected(PasskeyProblem):
    """The library refused the response: wrong origin or RP id, bad signature, no user
    verification, a sign count that went backwards, a challenge that does not match."""

    reason = "verification_failed"


class PasskeyAlreadyRegistered(PasskeyProblem):
    reason = "already_registered"


class PasskeyAccountCannotSignIn(PasskeyProblem):
    """The passkey checked out, but its account is turned off."""

    reason = "account_cannot_sign_in"


class PasskeyNotAllowed(PasskeyProblem):
    """The account's organization does not allow passkeys (``Organization.allow_passkey``)."""

    reason = "method_not_allowed"


class PasskeyNameMissing(PasskeyProblem):
    reason = "name_missing"


class PasskeyNeedsRecentSignIn(PasskeyProblem):
    """Adding or removing a passkey needs a sign-in within ``RECENT_SIGN_IN_SECONDS``."""

    reason = "sign_in_not_recent"


class EnrolmentLinkProblem(PasskeyProblem):
    """A passkey enrolment link that cannot be used: unknown, used, replaced or expired."""

    reason = "enrolment_link_unknown"


class EnrolmentLinkUsed(EnrolmentLinkProblem):
    reason = "enrolment_link_used"


class EnrolmentLinkExpired(EnrolmentLinkProblem):
    reason = "enrolment_link_expired"
