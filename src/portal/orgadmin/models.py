"""Invitations: how an organization's admin brings a colleague in.

An invitation names an organization, an address and the role the person will have. Its
link's secret is derived from a random seed (as the sign-in email's is, decision 0008):
only the seed and the secret's SHA-256 are stored, so a copy of the database without
``SECRET_KEY`` yields no usable link, and the worker renders the email at send time.
Resending draws a new seed: the earlier email's link stops working at once.

An invitation is open until it is accepted, revoked or past ``expires_at``
(``INVITATION_TTL_SECONDS`` after it was last sent); ``problem(now)`` names which.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.accounts.models import Membership, Organization
from portal.core.clock import now


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def open(self, moment: datetime) -> InvitationQuerySet:
        """Invitations whose link can still be used at ``moment``."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True,
                           expires_at__gt=moment)


class Invitation(models.Model):
    """One person invited to one organization by one of its admins."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="invitations")
    email = models.EmailField(max_length=254, db_index=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="invitations_sent")
    role = models.CharField(max_length=10, choices=Membership.Role.choices,
                            default=Membership.Role.MEMBER)
    # The seed the link's secret is derived from (useless without SECRET_KEY), and the
    # secret's SHA-256, the only thing a link is looked up by. A resend replaces both.
    link_seed = models.CharField(max_length=64)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(default=timezone.now)  # the latest (re)send
    send_count = models.PositiveIntegerField(default=1)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization}"

    def problem(self, moment: datetime) -> str | None:
        """Say why the link cannot be used at ``moment`` (revoked, used, expired), or None."""
        if self.revoked_at is not None:
            return "revoked"
        if self.accepted_at is not None:
            return "used"
        if self.expires_at <= moment:
            return "expired"
        return None

    @property
    def status(self) -> str:
        """Name the state for the admin's list: waiting, expired, accepted or revoked."""
        problem = self.problem(now())
        return {"used": "accepted"}.get(problem, problem) if problem else "waiting"
