"""Files attached to service requests: what is accepted, how it is kept, who may read it.

Rules (docs/portal.md, "Attachments"; decision 0032):

- **Limits.** At most ``ATTACHMENT_MAX_FILES`` files per new request or comment, each at
  most ``ATTACHMENT_MAX_BYTES`` and not empty. ``SizeLimitUploadHandler`` stops keeping a
  file's bytes once it passes the limit, so an oversized upload never fills the disk.
- **Type by content.** ``filetypes.detect`` reads the bytes; the uploaded name and the
  browser's Content-Type are never believed. The detected type is stored and served.
- **Names.** The uploaded name is only shown and offered as the download's name: it is
  cleaned (no folders, no control characters, at most ``MAX_NAME`` characters) and is
  never used in storage, where every file gets a random name (``models.stored_name``).
- **Storage.** Django's storage API, ``STORAGES["attachments"]``: a private folder or an
  S3-compatible bucket. Nothing serves that storage directly; the one way to read a file
  is a view that first checks the reader (``attachment_for``, or the staff admin).
- **Access.** A member of the request's organization, or staff in the admin. Anybody else
  gets "not found", exactly as for a number that does not exist.

Refusals are ``AttachmentRefused`` carrying facts (which file, which rule, the sizes);
``forms.py`` turns them into words.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.db import transaction
from django.db.models.signals import post_delete

from portal.accounts.models import User
from portal.servicedesk import filetypes
from portal.servicedesk.models import Attachment, Comment, ServiceRequest

# Characters of an uploaded name. Longer names are refused, not cut, so that what the
# person sees on the page is the name they chose.
MAX_NAME = 255
FALLBACK_NAME = "attachment"


class AttachmentRefused(Exception):
    """One chosen file breaks a rule; ``reason`` names it, the other fields are facts."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    TOO_MANY = "too_many"
    NAME_TOO_LONG = "name_too_long"
    NAME_UNUSABLE = "name_unusable"
    MARKUP = "markup"
    UNSUPPORTED = "unsupported"

    def __init__(self, reason: str, name: str = "", *, size: int = 0, limit: int = 0) -> None:
        super().__init__(reason, name)
        self.reason, self.name, self.size, self.limit = reason, name, size, limit


@dataclass(frozen=True)
class CheckedFile:
    """An upload that passed every rule, with its cleaned name and detected type."""

    upload: UploadedFile
    name: str
    size: int
    type: filetypes.FileType


def max_bytes() -> int:
    return int(settings.ATTACHMENT_MAX_BYTES)


def max_files() -> int:
    return int(settings.ATTACHMENT_MAX_FILES)


def clean_name(raw: str) -> str:
    """Return the uploaded name fit for a page and a download, or raise ``AttachmentRefused``.

    Only the last path part is kept (``C:\\Users\\bob\\log.txt`` is ``log.txt``). A control
    or formatting character (a NUL, a line break, a right-to-left override that would show
    ``gpj.exe`` as ``exe.jpg``) refuses the name rather than being dropped silently.
    """
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp") for ch in name):
        raise AttachmentRefused(AttachmentRefused.NAME_UNUSABLE, name.encode(
            "ascii", "backslashreplace").decode()[:80])
    name = " ".join(name.split()).strip(". ")
    if len(name) > MAX_NAME:
        raise AttachmentRefused(AttachmentRefused.NAME_TOO_LONG, name[:60] + "…",
                                size=len(name), limit=MAX_NAME)
    return name or FALLBACK_NAME


def check_upload(upload: UploadedFile) -> CheckedFile:
    """Check one uploaded file against every rule; return it checked or raise."""
    name = clean_name(upload.name or "")
    limit = max_bytes()
    size = int(upload.size or 0)
    if getattr(upload, "over_limit", False) or size > limit:
        raise AttachmentRefused(AttachmentRefused.TOO_LARGE, name, size=size, limit=limit)
    if size == 0:
        raise AttachmentRefused(AttachmentRefused.EMPTY, name)
    upload.seek(0)
    try:
        found = filetypes.detect(upload.chunks())
    except filetypes.UnsupportedType as exc:
        reason = {filetypes.UnsupportedType.EMPTY: AttachmentRefused.EMPTY,
                  filetypes.UnsupportedType.MARKUP: AttachmentRefused.MARKUP}.get(
            exc.reason, AttachmentRefused.UNSUPPORTED)
        raise AttachmentRefused(reason, name) from None
    finally:
        upload.seek(0)
    return CheckedFile(upload=upload, name=name, size=size, type=found)


def check_uploads(uploads: Sequence[UploadedFile]) -> tuple[list[CheckedFile],
                                                             list[AttachmentRefused]]:
    """Check a submission's files; return the accepted ones and every refusal, in order."""
    if len(uploads) > max_files():
        return [], [AttachmentRefused(AttachmentRefused.TOO_MANY, size=len(uploads),
                                      limit=max_files())]
    accepted, refused = [], []
    for upload in uploads:
        try:
            accepted.append(check_upload(upload))
        except AttachmentRefused as refusal:
            refused.append(refusal)
    return accepted, refused


def store(files: Iterable[CheckedFile], service_request: ServiceRequest, *,
          comment: Comment | None, uploaded_by: User | None,
          moment: datetime) -> list[Attachment]:
    """Write ``files`` to the attachment storage and their rows; call inside a transaction.

    Callers store last in their transaction, so the only failure left after the files are
    written is the commit itself. If writing one file fails, the ones already written are
    removed again before the error goes on (their rows roll back with the transaction).
    """
    created: list[Attachment] = []
    try:
        for checked in files:
            attachment = Attachment(service_request=service_request, comment=comment,
                                    name=checked.name, size=checked.size,
                                    content_type=checked.type.content_type,
                                    uploaded_by=uploaded_by, created_at=moment)
            # The name given here is ignored: ``stored_name`` draws a random one.
            attachment.file.save(checked.type.extension, checked.upload, save=False)
            created.append(attachment)
            attachment.save()
    except BaseException:
        for attachment in created:
            attachment.file.delete(save=False)
        raise
    return created


def for_request(service_request: ServiceRequest) -> dict[int | None, list[Attachment]]:
    """Return the request's attachments by the comment they came with (None: the filing)."""
    grouped: dict[int | None, list[Attachment]] = {}
    for attachment in service_request.attachments.select_related("uploaded_by"):
        grouped.setdefault(attachment.comment_id, []).append(attachment)
    return grouped


def _remove_stored_file(sender: type[Attachment], instance: Attachment, **kwargs: Any) -> None:
    # A deleted request or attachment leaves no file behind that nobody could reach; only
    # once the deletion commits, so a deletion that rolls back keeps its file.
    name, storage = instance.file.name, instance.file.storage
    if name:
        transaction.on_commit(lambda: storage.delete(name))


post_delete.connect(_remove_stored_file, sender=Attachment,
                    dispatch_uid="servicedesk.attachments.remove_stored_file")


class OverLimitUpload(UploadedFile):
    """Stands for an uploaded file whose bytes passed the limit and were not kept."""

    over_limit = True

    def __init__(self, name: str, size: int, content_type: str | None) -> None:
        super().__init__(BytesIO(), name=name, content_type=content_type, size=size)


class SizeLimitUploadHandler(FileUploadHandler):
    """Keep no byte of an uploaded file beyond ``ATTACHMENT_MAX_BYTES``.

    First in ``FILE_UPLOAD_HANDLERS``: once a file passes the limit its further chunks are
    swallowed here, so the memory and temporary-file handlers after it never hold more
    than the limit plus one chunk, and the form gets an ``OverLimitUpload`` that says how
    big the file was. (nginx's ``client_max_body_size`` caps the request as a whole.)
    """

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > max_bytes():
            return None
        return raw_data

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if self.received > max_bytes():
            return OverLimitUpload(self.file_name or "", self.received, self.content_type)
        return None
