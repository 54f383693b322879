"""Service requests a customer organization files, the conversation on each, its files."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import models
from django.urls import reverse
from django.utils import timezone

from portal.servicedesk import filetypes


class ServiceRequest(models.Model):
    class Status(models.TextChoices):
        NEW = "new", "New"
        IN_PROGRESS = "in_progress", "In progress"
        WAITING = "waiting", "Waiting on you"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent: work is stopped"

    organization = models.ForeignKey("accounts.Organization", on_delete=models.CASCADE,
                                     related_name="service_requests")
    number = models.PositiveIntegerField(help_text="Shown as SR-1042; unique per organization.")
    title = models.CharField(max_length=200)
    description = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(max_length=10, choices=Priority.choices,
                                default=Priority.NORMAL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="service_requests")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["organization", "number"],
                                               name="service_request_number_unique")]

    def __str__(self) -> str:
        return f"{self.reference}: {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("servicedesk:detail", args=[self.number])

    @property
    def reference(self) -> str:
        return f"SR-{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status not in (self.Status.RESOLVED, self.Status.CLOSED)


class Comment(models.Model):
    service_request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE,
                                        related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="comments")
    body = models.TextField()
    from_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment on {self.service_request.reference} by {self.author}"


class AttachmentStorage(Storage):
    """``STORAGES["attachments"]``, looked up at every use rather than once at start-up.

    A ``FileField`` keeps the storage it was given when models load; this one hands each
    call to whatever ``STORAGES["attachments"]`` is now (a folder or an S3 bucket), so the
    setting decides, also when a test changes it.
    """

    @staticmethod
    def backend() -> Storage:
        return storages["attachments"]

    def open(self, name: str, mode: str = "rb") -> File:
        return self.backend().open(name, mode)

    def save(self, name: str | None, content: Any, max_length: int | None = None) -> str:
        return self.backend().save(name, content, max_length=max_length)

    def delete(self, name: str) -> None:
        self.backend().delete(name)

    def exists(self, name: str) -> bool:
        return self.backend().exists(name)

    def size(self, name: str) -> int:
        return self.backend().size(name)

    def url(self, name: str | None) -> str:
        # Never a public address: attachments are served by views that check the reader.
        raise NotImplementedError("attachments have no public URL")

    def generate_filename(self, filename: str | os.PathLike[str]) -> str:
        return self.backend().generate_filename(filename)


def attachment_storage() -> Storage:
    return AttachmentStorage()


def stored_name(instance: Attachment, filename: str) -> str:
    """Return a random storage name; the uploaded name never reaches the storage.

    192 random bits: a name cannot be guessed, clashes do not happen, and nothing a
    customer typed (``../``, a drive letter, a very long or strange name) reaches a path.
    The suffix is the detected type's, for the operator's benefit only.
    """
    suffix = filetypes.extension_of(instance.content_type)
    return f"{instance.created_at:%Y/%m}/{secrets.token_urlsafe(24)}.{suffix}"


class Attachment(models.Model):
    """A file that came with a request (``comment`` empty) or with one of its comments."""

    service_request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE,
                                        related_name="attachments")
    comment = models.ForeignKey(Comment, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="attachments")
    file = models.FileField(upload_to=stored_name, storage=attachment_storage, max_length=200)
    name = models.CharField(max_length=255, help_text="The uploaded name, cleaned; shown and "
                                                      "offered as the download's name.")
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    content_type = models.CharField(max_length=100, help_text="Detected from the content.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="attachments")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("servicedesk:attachment", args=[self.service_request.number, self.pk])
