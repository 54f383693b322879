"""The outbox: every email the portal sends, and every attempt to deliver it."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from portal.core.moments import format_moment


class OutboundMessage(models.Model):
    """One email, written in the same transaction as whatever caused it.

    Most messages are stored fully rendered. A message with a ``renderer`` is rendered by
    the worker at send time instead (sign-in links: the secret is minted then, so the
    database never holds a usable link; see ``portal.mail.renderers``).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        RETRYING = "retrying", "Retrying"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (not sent: would arrive too late)"
        CANCELLED = "cancelled", "Cancelled (nothing to send)"

    kind = models.CharField(max_length=40, default="generic", db_index=True)
    to = models.CharField("recipient", max_length=254, db_index=True)
    subject = models.CharField(max_length=300, blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    renderer = models.CharField(max_length=40, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED,
                              db_index=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Past this moment the content is pointless (a sign-in link that would arrive expired).
    not_after = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=8)
    claimed_by = models.CharField(max_length=100, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField("Message-ID", max_length=300, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbox_due")]

    def __str__(self) -> str:
        return f"{self.kind} to {self.to} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at handing a message to the SMTP relay, with what the relay said."""

    class Result(models.TextChoices):
        SENT = "sent", "Accepted by the relay"
        TRANSIENT = "transient", "Temporary failure (will retry)"
        PERMANENT = "permanent", "Permanent failure"

    message = models.ForeignKey(OutboundMessage, on_delete=models.CASCADE,
                                related_name="attempts")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=100, blank=True)
    result = models.CharField(max_length=10, choices=Result.choices)
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    reply = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"Attempt on {self.message_id} at {format_moment(self.started_at)}: {self.result}"
