"""What the sign-in system remembers: link requests, external identities, sessions."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.core.clock import now
from portal.core.moments import format_moment
from portal.core.prepared import Prepared
from portal.signin.errors import (
    ApprovalLocked,
    LinkAlreadyUsed,
    LinkExpired,
    LinkProblem,
    LinkRefused,
    LinkRevoked,
    LinkSuperseded,
)

# How the admin names a link that no longer works, by ``LinkProblem.kind``.
LINK_STATUS = {"used": "Used to sign in", "revoked": "Revoked (a later sign-in)",
               "superseded": "Replaced by a newer link", "expired": "Expired",
               "refused": "Stopped from another device (\"This wasn't me\")",
               "approval_locked": "Stopped after too many wrong approval numbers"}
APPROVED_STATUS = "Approved on another device, waiting for the browser that asked"


class SignInRequestQuerySet(models.QuerySet["SignInRequest"]):
    """The rules about which links still work, each written once."""

    def for_address(self, email: str) -> SignInRequestQuerySet:
        return self.filter(email=email)

    def with_person(self) -> SignInRequestQuerySet:
        """Requests with their person, membership and organization in the same query:
        eligibility and every audit row read them (the person may be None)."""
        return self.select_related("user__membership__organization")

    def open(self, moment: datetime | None = None) -> SignInRequestQuerySet:
        """Requests whose link could still sign someone in: not used, refused, replaced,
        revoked or expired (rule 4). ``moment`` defaults to now.

        Link, code and approval all consume through this one filter, so single use,
        expiry, "a newer request" and "a sign-in" end all three alike.
        """
        return self.unsettled().filter(expires_at__gt=moment or now())

    def unsettled(self) -> SignInRequestQuerySet:
        """Requests not yet used, refused, replaced or revoked, expired or not.

        Superseding and revoking also mark expired rows, so an old link's page says
        "a newer link was sent" rather than only "expired" (rule 8).
        """
        return self.filter(consumed_at__isnull=True, refused_at__isnull=True,
                           superseded_at__isnull=True, revoked_at__isnull=True)

    def unapproved(self) -> SignInRequestQuerySet:
        """Requests no other device has approved yet (rule 11).

        An approval reserves the request for the browser that asked: from then on no other
        browser may use the link, to sign itself in or to approve a second time.
        """
        return self.filter(approved_at__isnull=True)

    def supersede_open(self, email: str, moment: datetime) -> int:
        """Mark every unsettled request of ``email`` replaced by a newer one (rule 4)."""
        return self.for_address(email).unsettled().update(superseded_at=moment)

    def revoke_open(self, email: str, moment: datetime | None = None) -> int:
        """Switch off every unsettled link of ``email``: someone just signed in (rule 4)."""
        return self.for_address(email).unsettled().update(revoked_at=moment or now())



class SignInRequest(models.Model):
    """One "Email me a sign-in link" request, from the form to the click.

    The web request writes this row and nothing else (rule 1); the worker decides whether a
    link is sent, and only then mints the secret, storing its SHA-256 (rule 3). The
    destination after sign-in lives here, never in the link (rule 4).
    """

    class Refusal(models.TextChoices):
        """Why a request was stopped before anyone signed in with it (rule 11)."""

        NOT_ME = "not_me", "\"This wasn't me\" on the device that opened the link"
        WRONG_NUMBERS = "wrong_numbers", "Too many wrong approval numbers"

    class Delivery(models.TextChoices):
        """What became of the email; whether the link still works is a separate question."""

        PENDING = "pending", "Waiting for the worker"
        SENT = "sent", "Sent"
        DECLINED = "declined", "Not sent (the address may not sign in)"
        UNDELIVERED = "undelivered", "Could not be delivered"

    email = models.CharField(max_length=254, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    delivery = models.CharField(max_length=20, choices=Delivery.choices,
                                default=Delivery.PENDING)
    decline_reason = models.CharField(max_length=40, blank=True)
    # SHA-256 hex of the link secret; empty until the worker mints it.
    token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    # HMAC-SHA256 hex of the short code (rule 11; see tokens.hmac_code), never its plain hash:
    # a six-digit code's SHA-256 is reversed offline in a second. Empty until minted.
    code_hmac = models.CharField(max_length=64, blank=True)
    # Random hex drawn by the worker at the first render; the link secret and the code are
    # HMACs of it under keys derived from SECRET_KEY (tokens.token_from_seed/code_from_seed),
    # so a retried email carries the same link and code. Useless without SECRET_KEY.
    link_seed = models.CharField(max_length=64, blank=True)
    # Tries of the code so far, counted by one conditional UPDATE (see redeem_code).
    code_attempts = models.PositiveSmallIntegerField(default=0)
    # Two digits shown on the asking browser's "Check your inbox" page; another device
    # approves the sign-in only by typing them (rule 11). Made with ``secrets`` when the
    # request is recorded, for every address alike.
    approval_number = models.CharField(max_length=2, blank=True)
    # Wrong numbers so far, counted by one conditional UPDATE (see flows.magic_link.approve).
    approval_attempts = models.PositiveSmallIntegerField(default=0)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_ip = models.GenericIPAddressField(null=True, blank=True)
    approved_user_agent = models.CharField(max_length=400, blank=True)
    refused_at = models.DateTimeField(null=True, blank=True)
    refusal = models.CharField(max_length=20, choices=Refusal.choices, blank=True)
    # SHA-256 hex of the browser-binding cookie of the browser that asked (rule 6).
    binding_hash = models.CharField(max_length=64)
    next_url = models.CharField(max_length=2000, default="/")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True)
    consumed_ip = models.GenericIPAddressField(null=True, blank=True)
    consumed_user_agent = models.CharField(max_length=400, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="sign_in_requests")
    message = models.OneToOneField("mail.OutboundMessage", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="sign_in_request")

    objects = SignInRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["email", "consumed_at"], name="signin_req_email_open")]

    def __str__(self) -> str:
        return f"Sign-in link for {self.email} at {format_moment(self.created_at)}"

    def problem(self, moment: datetime | None = None, *,
                asker: bool = False) -> LinkProblem | None:
        """Say why this link cannot sign anyone in, or None if it can (rules 4, 5, 8, 11).

        ``asker`` is True for the browser that asked (its binding cookie matched): an
        approval from another device reserves the request for it, so to every other browser
        an approved link is a used one. The order matters: a used link says "used" even
        after it expired; "stopped", "replaced" and "revoked" beat "expired" because they
        say what the person can do about it.
        """
        args = (self.email, self.binding_hash)
        if self.consumed_at is not None:
            return LinkAlreadyUsed(*args)
        if self.refused_at is not None:
            if self.refusal == self.Refusal.WRONG_NUMBERS:
                return ApprovalLocked(*args)
            return LinkRefused(*args)
        if self.approved_at is not None and not asker:
            return LinkAlreadyUsed(*args)
        if self.revoked_at is not None:
            return LinkRevoked(*args)
        if self.superseded_at is not None:
            return LinkSuperseded(*args)
        if self.expires_at <= (moment or now()):
            return LinkExpired(*args)
        return None

    @property
    def status(self) -> str:
        """One phrase for staff: what became of the email and of the link, as of now."""
        problem = self.problem(asker=True)
        if problem is not None:
            return LINK_STATUS[problem.kind]
        if self.approved_at is not None:
            return APPROVED_STATUS
        return self.get_delivery_display()


class ExternalIdentity(models.Model):
    """An account at an OpenID provider, linked to a user by (issuer, subject), never by email."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="external_identities")
    provider = models.CharField(max_length=20)  # google or microsoft
    issuer = models.CharField(max_length=300)
    subject = models.CharField(max_length=300)
    email_at_link = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "external identity"
        verbose_name_plural = "external identities"
        constraints = [models.UniqueConstraint(fields=["issuer", "subject"],
                                               name="external_identity_unique")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.subject} → {self.user}"


class UserSession(models.Model):
    """A signed-in browser, for the "Your sessions" page. Mirrors one Django session row."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="portal_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    method = models.CharField(max_length=20)  # email, email_code, email_approval, google, …
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.user} via {self.method} since {format_moment(self.created_at)}"


def request_by_token_hash(token_hash: str) -> models.QuerySet[SignInRequest]:
    """The request whose link secret hashes to ``token_hash``, with its person."""
    return SignInRequest.objects.with_person().filter(token_hash=token_hash).order_by("pk")[:1]


def request_by_id(pk: int) -> models.QuerySet[SignInRequest]:
    """Request ``pk`` with its person."""
    return SignInRequest.objects.with_person().filter(pk=pk)[:1]


# Every link opened and every confirmation runs one of these: compiled once per process
# (portal.core.prepared), read afresh each time.
BY_TOKEN_HASH = Prepared(request_by_token_hash)
BY_ID = Prepared(request_by_id)
