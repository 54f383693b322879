"""The audit trail of sign-in events."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal.core.moments import format_moment


class AuthEvent(models.Model):
    """One thing that happened on the way in or out. Never holds a secret."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        INFO = "info", "Info"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # No ``choices``: a new tag must not need a migration. ``record_event`` takes only a Tag.
    tag = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.INFO)
    email = models.CharField(max_length=254, blank=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="auth_events")
    organization = models.ForeignKey("accounts.Organization", null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="auth_events")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    reason = models.CharField(max_length=100, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    # The staff member who made a change in the admin (``admin:…`` tags); empty otherwise.
    # The address is kept as text too, so the row still names them after the account is gone.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="audited_actions")
    actor_email = models.CharField(max_length=254, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{format_moment(self.created_at)} {self.tag} {self.email}"
