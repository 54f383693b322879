"""Forms of the service desk: they validate and explain, in words a customer reads once."""

from __future__ import annotations

from django import forms

from portal.servicedesk.models import ServiceRequest

TITLE_MAX = 200  # the model's column
DESCRIPTION_MAX = 10_000
COMMENT_MAX = 10_000


class ServiceRequestForm(forms.Form):
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


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Add a comment", max_length=COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={
            "required": "Write a comment before sending it.",
            "max_length": f"Keep a comment to {COMMENT_MAX:,} characters or fewer "
                          "(it has %(show_value)d).",
        })
