"""The browsers each person has signed in from, so a new one can be told apart."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class KnownBrowser(models.Model):
    """A browser (its device cookie) that has signed in as this person.

    Only the SHA-256 of the cookie's random device id is kept: the row says "this person
    signed in from that browser", never which cookie to forge (the cookie is signed too).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="known_browsers")
    device_hash = models.CharField(max_length=64)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    sign_ins = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "device_hash"],
                                               name="known_browser_unique")]

    def __str__(self) -> str:
        return f"Browser {self.device_hash[:8]} of {self.user_id}"
