"""The personal notification choices, with words for every wrong answer."""

from __future__ import annotations

from django import forms

from portal.accounts.models import User

CHOICE_HINTS: dict[str, str] = {
    User.RequestUpdates.MINE: "Staff replies and status changes on the requests you filed.",
    User.RequestUpdates.ORGANIZATION: "The same for every request of your organization, "
                                      "whoever filed it.",
    User.RequestUpdates.OFF: "No emails about requests; you see every update on the "
                             "Requests page.",
}


class PreferencesForm(forms.Form):
    request_updates = forms.ChoiceField(
        label="Email me about service requests", choices=User.RequestUpdates.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose which service request updates to get by email.",
            "invalid_choice": "Choose one of the three options: requests you filed, every "
                              "request of your organization, or none.",
        })
