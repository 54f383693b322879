"""What the portal stores about passkeys: one row per credential, one handle per person."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models

from portal.core.clock import now

# WebAuthn allows user handles up to 64 bytes; 32 random bytes cannot be guessed or linked.
HANDLE_BYTES = 32
NAME_MAX = 60


class PasskeyHandle(models.Model):
    """The random WebAuthn user handle of one person.

    Authenticators store the handle and hand it back at sign-in; it must never be the email
    address (it would leak the address to anyone who can read the authenticator, and would
    change when the address does).
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="passkey_handle")
    handle = models.BinaryField(max_length=64, unique=True)

    def __str__(self) -> str:
        return f"passkey handle of {self.user}"

    @classmethod
    def for_user(cls, user: object) -> PasskeyHandle:
        """Return ``user``'s handle, creating a random one the first time."""
        row, _ = cls.objects.get_or_create(
            user=user, defaults={"handle": secrets.token_bytes(HANDLE_BYTES)})
        return row


class Passkey(models.Model):
    """One registered credential, found by its credential id at sign-in."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="passkeys")
    # base64url of the raw credential id (at most 1023 bytes, so at most 1364 characters).
    credential_id = models.CharField(max_length=1400, unique=True)
    public_key = models.BinaryField()  # COSE-encoded, exactly as the library returned it
    sign_count = models.PositiveBigIntegerField(default=0)
    backup_eligible = models.BooleanField(default=False)  # a synced (multi-device) passkey
    backup_state = models.BooleanField(default=False)  # currently backed up
    transports = models.JSONField(default=list, blank=True)
    aaguid = models.CharField(max_length=36, blank=True)
    name = models.CharField(max_length=NAME_MAX)
    created_at = models.DateTimeField(default=now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"

    @property
    def kind(self) -> str:
        """Say how the passkey lives, as the Passkeys page shows it."""
        return "Synced" if self.backup_eligible else "This device only"


class EnrolmentLink(models.Model):
    """A one-time link an operator hands to a person so they can add a passkey.

    Printed by ``portal adduser --staff`` (the first staff member has no other way in to
    the admin) and by ``portal passkey-reset`` (a staff member who lost their passkeys).
    Only the SHA-256 of its secret is stored, so a copy of the database opens nothing.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="passkey_enrolment_links")
    secret_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"passkey enrolment link for {self.user}"
