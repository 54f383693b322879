from __future__ import annotations

from django import forms

from portal.accounts.services import MAX_EMAIL_LENGTH, InvalidEmail, clean_email


class LinkRequestForm(forms.Form):
    email = forms.CharField(
        label="Work email address", max_length=MAX_EMAIL_LENGTH + 50, strip=False,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autocapitalize": "none",
                                       "spellcheck": "false", "inputmode": "email"}),
        error_messages={"required": "Enter your email address.",
                        "max_length": f"An email address is at most {MAX_EMAIL_LENGTH} "
                                      "characters."})
    next = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)

    def clean_email(self) -> str:
        try:
            return clean_email(self.cleaned_data["email"])
        except InvalidEmail as exc:
            raise forms.ValidationError(str(exc)) from None
