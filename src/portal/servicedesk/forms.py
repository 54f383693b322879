"""Forms of the service desk: they validate and explain, in words a customer reads once."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

from portal.servicedesk import attachments
from portal.servicedesk.attachments import AttachmentRefused
from portal.servicedesk.models import ServiceRequest

TITLE_MAX = 200  # the model's column
DESCRIPTION_MAX = 10_000
COMMENT_MAX = 10_000


# What the file picker offers first; only a hint: the content decides (filetypes.py).
ACCEPT = ("image/png,image/jpeg,image/gif,image/webp,application/pdf,application/zip,"
          "text/plain,.txt,.log,.zip,.pdf")
KINDS = "screenshots (PNG, JPEG, GIF, WebP), PDF, ZIP or plain-text logs"


def size_words(size: int) -> str:
    """Return "10 MB", "68.4 KB", "360 bytes": the sizes the messages name."""
    return re.sub(r"\.0(?= )", "", filesizeformat(size).replace("\xa0", " "))


def refusal_words(refusal: AttachmentRefused) -> str:
    """Return the sentence that names the file and why it was not accepted."""
    name = f"“{refusal.name}”"
    limit = size_words(attachments.max_bytes())
    words = {
        AttachmentRefused.EMPTY: f"{name} is empty (0 bytes). Choose the file again, or "
                                 "another one.",
        AttachmentRefused.TOO_LARGE: f"{name} is {size_words(refusal.size)}; each file can "
                                     f"be at most {limit}. Attach a smaller file, or a ZIP "
                                     "of it.",
        AttachmentRefused.TOO_MANY: f"Attach at most {refusal.limit} files at a time (you "
                                    f"chose {refusal.size}). Add the others in a comment.",
        AttachmentRefused.NAME_TOO_LONG: f"A file name is {refusal.size} characters long "
                                         f"({name}); rename the file to at most "
                                         f"{refusal.limit} characters and choose it again.",
        AttachmentRefused.NAME_UNUSABLE: f"The name {name} has a character a file name "
                                         "cannot have here (such as a control character). "
                                         "Rename the file and choose it again.",
        AttachmentRefused.MARKUP: f"{name} is a web page or SVG image (HTML, SVG or XML), "
                                  "which we do not accept because it could run code in a "
                                  "reader's browser. Attach a screenshot or a PDF of it "
                                  "instead.",
    }
    return words.get(refusal.reason, f"{name} is not a kind of file we accept, whatever its "
                                     f"name says. Attach {KINDS}.")


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class AttachmentsField(forms.Field):
    """Zero or more files, each checked by ``attachments.check_upload``.

    Every refused file gets its own message, so one look tells which files to change.
    """

    widget = MultipleFileInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Attach files")
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT}))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> list[attachments.CheckedFile]:
        uploads = [f for f in (value if isinstance(value, (list, tuple)) else [value]) if f]
        accepted, refused = attachments.check_uploads(uploads)
        if refused:
            raise ValidationError([refusal_words(r) for r in refused], code="attachment")
        return accepted


def attachments_help() -> str:
    return (f"Optional: up to {attachments.max_files()} files, each at most "
            f"{size_words(attachments.max_bytes())}: {KINDS}. Never attach passwords or "
            "sign-in links.")


class AttachmentsMixin(forms.Form):
    attachments = AttachmentsField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Last on the page, after the text it belongs to.
        self.fields["attachments"] = self.fields.pop("attachments")
        # From settings at each use, so the words follow ATTACHMENT_MAX_* (tests change them).
        self.fields["attachments"].help_text = attachments_help()

    @property
    def files_to_choose_again(self) -> bool:
        """Whether files came with a submission that is shown again (browsers drop them)."""
        return self.is_bound and bool(self.files) and bool(self.errors)


class ServiceRequestForm(AttachmentsMixin, forms.Form):
    title = forms.CharField(
        max_length=TITLE_MAX,
        help_text="One line that says what is wrong, e.g. “Warehouse printer offline”.",
        error_messages={
            "required": "Give the request a short title.",
            "max_length": f"Keep the title to {TITLE_MAX} characters or fewer "
                          "(it has %(show_value)d). Put the details in the description.",
        })
    description = forms.CharField(
        max_length=DESCRIPTION_MAX, widget=forms.Textarea(attrs={"rows": 8}),
        help_text="What happened, who is affected, and what you have tried. "
                  "Never include passwords or sign-in links.",
        error_messages={
            "required": "Describe the problem so we can start on it.",
            "max_length": f"Keep the description to {DESCRIPTION_MAX:,} characters or fewer "
                          "(it has %(show_value)d).",
        })
    priority = forms.ChoiceField(
        choices=ServiceRequest.Priority.choices, initial=ServiceRequest.Priority.NORMAL,
        help_text="Choose “Urgent” only when people cannot work.",
        error_messages={"required": "Choose a priority.",
                        "invalid_choice": "Choose one of the priorities in the list."})


class CommentForm(AttachmentsMixin, forms.Form):
    body = forms.CharField(
        label="Add a comment", max_length=COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={
            "required": "Write a comment before sending it.",
            "max_length": f"Keep a comment to {COMMENT_MAX:,} characters or fewer "
                          "(it has %(show_value)d).",
        })
