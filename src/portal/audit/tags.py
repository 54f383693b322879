"""Audit tags read ``source:subject:action`` so a log search finds a journey by its name."""

from enum import StrEnum


class Tag(StrEnum):
    LINK_REQUESTED = "signin:link:requested"
    LINK_DECLINED = "signin:link:declined"  # the worker decided this address gets no link
    LINK_SENT = "signin:link:sent"
    LINK_DELIVERY_FAILED = "signin:link:delivery_failed"
    LINK_EXPIRED_UNSENT = "signin:link:expired_unsent"
    LINK_OPENED = "signin:link:opened"
    LINK_CONFIRMED = "signin:link:confirmed"
    LINK_REDEEMED = "signin:link:redeemed"
    LINK_EXPIRED_USE = "signin:link:expired_use"
    LINK_REUSED = "signin:link:reused"
    LINK_SUPERSEDED_USE = "signin:link:superseded_use"
    LINK_REVOKED_USE = "signin:link:revoked_use"
    LINK_UNKNOWN = "signin:link:unknown"
    LINK_RATE_LIMITED = "signin:link:rate_limited"
    LINK_CODE_FAILED = "signin:link:code_failed"  # a wrong, dead or misplaced short code
    # Approval from another device (rule 11): the right number typed there; a wrong number
    # or a continue from the wrong browser; "This wasn't me" or too many wrong numbers;
    # strict mode refusing to sign in a browser that did not ask.
    LINK_APPROVED = "signin:link:approved"
    LINK_APPROVAL_FAILED = "signin:link:approval_failed"
    LINK_REFUSED = "signin:link:refused"
    LINK_REFUSED_USE = "signin:link:refused_use"  # a stopped request's link or code used
    LINK_SAME_BROWSER_ONLY = "signin:link:same_browser_only"
    OIDC_SUCCEEDED = "signin:oidc:succeeded"
    OIDC_FAILED = "signin:oidc:failed"
    PASSKEY_REGISTERED = "signin:passkey:registered"
    PASSKEY_SIGNED_IN = "signin:passkey:signed_in"
    PASSKEY_FAILED = "signin:passkey:failed"  # a refused registration or sign-in attempt
    PASSKEY_RATE_LIMITED = "signin:passkey:rate_limited"
    PASSKEY_RENAMED = "signin:passkey:renamed"
    PASSKEY_REMOVED = "signin:passkey:removed"
    PASSKEY_ENROLMENT_ISSUED = "signin:passkey:enrolment_issued"  # an operator printed a link
    PASSKEY_ENROLMENT_USED = "signin:passkey:enrolment_used"  # signed in by that link
    PASSKEY_RESET = "signin:passkey:reset"  # an operator removed all of a person's passkeys
    SIGNED_OUT = "signin:session:signed_out"
    SESSION_ENDED = "signin:session:ended"
    SESSION_TIMED_OUT = "signin:session:timed_out"
    SESSIONS_REVOKED = "signin:session:revoked"  # access taken away: every session ended
    # A sensitive action refused because the sign-in was not recent enough (asked to sign in again).
    RECENT_SIGN_IN_REQUIRED = "signin:session:recent_sign_in_required"
    # An organization admin's invitation used: the person joined (and, where the
    # organization allows email sign-in, was signed in: INVITATION_SIGNED_IN, the method
    # "invitation"); a dead or refused invitation link.
    INVITATION_SIGNED_IN = "signin:invitation:signed_in"
    INVITATION_REFUSED = "signin:invitation:refused"
    # Changes an organization's own admin makes (portal.orgadmin); actor = that admin,
    # organization = theirs, user = the person changed (when there is one).
    ORGADMIN_INVITATION_SENT = "orgadmin:invitation:sent"
    ORGADMIN_INVITATION_RESENT = "orgadmin:invitation:resent"
    ORGADMIN_INVITATION_REVOKED = "orgadmin:invitation:revoked"
    ORGADMIN_INVITATION_ACCEPTED = "orgadmin:invitation:accepted"
    ORGADMIN_INVITATION_RATE_LIMITED = "orgadmin:invitation:rate_limited"
    ORGADMIN_MEMBER_DISABLED = "orgadmin:member:disabled"
    ORGADMIN_MEMBER_ENABLED = "orgadmin:member:enabled"
    ORGADMIN_MEMBER_ROLE_CHANGED = "orgadmin:member:role_changed"
    ORGADMIN_POLICY_CHANGED = "orgadmin:policy:changed"
    # Staff changes in the admin; each row names the staff member (actor) and what changed.
    ADMIN_USER_ADDED = "admin:user:added"
    ADMIN_USER_CHANGED = "admin:user:changed"
    ADMIN_USER_DELETED = "admin:user:deleted"
    ADMIN_MEMBERSHIP_ADDED = "admin:membership:added"
    ADMIN_MEMBERSHIP_CHANGED = "admin:membership:changed"
    ADMIN_MEMBERSHIP_REMOVED = "admin:membership:removed"
    ADMIN_ORGANIZATION_ADDED = "admin:organization:added"
    ADMIN_ORGANIZATION_CHANGED = "admin:organization:changed"
    ADMIN_ORGANIZATION_DELETED = "admin:organization:deleted"
    ADMIN_GROUP_ADDED = "admin:group:added"
    ADMIN_GROUP_CHANGED = "admin:group:changed"
    ADMIN_GROUP_DELETED = "admin:group:deleted"
    # accounts migration 0002: extra memberships removed when one per person became the rule.
    MEMBERSHIP_REMOVED_BY_MIGRATION = "migration:membership:removed"
