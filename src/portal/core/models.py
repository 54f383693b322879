"""Shared tables that belong to no domain: the rate-limit log of the database store."""

from django.db import models


class RateLimitHit(models.Model):
    """One admitted attempt under one limit, kept until it leaves that limit's window.

    Only admitted attempts are stored, so a key holds at most its limit of live rows;
    ``portal.core.ratelimit`` counts and writes them under a lock per key.
    """

    key = models.CharField(max_length=200)
    # Microseconds since the epoch, as an integer: exact, and compared the same way on
    # SQLite and PostgreSQL.
    expires_at_us = models.BigIntegerField()

    class Meta:
        indexes = [
            # Counting a key's attempts inside its window, and finding the one to leave next.
            models.Index(fields=["key", "expires_at_us"], name="core_rlhit_key_expiry"),
            # Housekeeping: expired rows of any key.
            models.Index(fields=["expires_at_us"], name="core_rlhit_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.key} until {self.expires_at_us}"
