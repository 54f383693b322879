"""Shared tables that belong to no domain: rate-limit counters for the database backend."""

from django.db import models


class RateLimitCounter(models.Model):
    """One fixed-window counter; bumped with one atomic upsert so processes share it."""

    key = models.CharField(max_length=200, unique=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}={self.count}"
