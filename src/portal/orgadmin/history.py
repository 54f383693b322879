"""An organization's sign-in history: which audit rows its admins see, filtered and exported.

Rules this module keeps (each has a test in tests/orgadmin/test_history.py):

- **Scoped first.** Every query starts from ``events_of(organization)``: rows whose
  organization is the admin's own. No filter value can widen it; an address that is not in
  this organization's history is not a choice, and choosing it is a form error (400).
- **Sign-in events only.** Rows whose tag begins ``signin:`` (links, codes, Google and
  Microsoft, passkeys, sessions); staff changes in the admin (``admin:…``) and migration
  rows are Cloud Sentry's own records, not the organization's history.
- **Dates are whole days in the admin's zone**, both ends included: "From 4 March" starts
  at midnight of 4 March where the admin is. A date that is not a date, outside 2000 to 2100,
  or a start after the end is a form error, never a 500.
- **The export is the page's rows**, newest first, at most ``EXPORT_LIMIT``, streamed;
  each time once in ISO 8601 UTC and once in the admin's zone; no cell starts with a
  character a spreadsheet reads as a formula (``= + - @``, tab, carriage return): those
  get a leading apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import QuerySet

from portal.accounts.models import Organization
from portal.audit.models import AuthEvent
from portal.core.http import describe_agent
from portal.core.moments import format_moment
from portal.core.templatetags.portal_tags import sign_in_method

PER_PAGE = 50
EXPORT_LIMIT = 10_000
# At most this many addresses in the "Person" list (an organization's history names few).
PEOPLE_LIMIT = 500
SIGN_IN_TAGS = "signin:"
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# What each event means, in the words the page and the export use.
EVENT_WORDS = {
    "signin:link:requested": "Asked for a sign-in link",
    "signin:link:declined": "No link sent (this address may not sign in)",
    "signin:link:sent": "Sign-in email sent",
    "signin:link:delivery_failed": "Sign-in email could not be delivered",
    "signin:link:expired_unsent": "Sign-in email not sent in time",
    "signin:link:opened": "Opened the link in another browser",
    "signin:link:confirmed": "Confirmed the link",
    "signin:link:redeemed": "Signed in",
    "signin:link:expired_use": "Used an expired link",
    "signin:link:reused": "Used a link a second time",
    "signin:link:superseded_use": "Used a link that a newer one replaced",
    "signin:link:revoked_use": "Used a link that was cancelled",
    "signin:link:unknown": "Used a link that is not valid",
    "signin:link:rate_limited": "Asked for too many links",
    "signin:link:code_failed": "Typed a wrong or dead code",
    "signin:link:approved": "Approved a sign-in from another device",
    "signin:link:approval_failed": "Typed a wrong approval number",
    "signin:link:refused": "Said \"This wasn't me\"",
    "signin:link:refused_use": "Used a stopped sign-in",
    "signin:link:same_browser_only": "Refused: only the browser that asked may sign in",
    "signin:oidc:succeeded": "Signed in",
    "signin:oidc:failed": "Sign-in refused",
    "signin:passkey:registered": "Added a passkey",
    "signin:passkey:signed_in": "Signed in",
    "signin:passkey:failed": "Passkey refused",
    "signin:passkey:rate_limited": "Too many passkey attempts",
    "signin:passkey:renamed": "Renamed a passkey",
    "signin:passkey:removed": "Removed a passkey",
    "signin:passkey:enrolment_issued": "Support issued a passkey enrolment link",
    "signin:passkey:enrolment_used": "Signed in with an enrolment link",
    "signin:passkey:reset": "Support removed every passkey",
    "signin:session:signed_out": "Signed out",
    "signin:session:ended": "Signed out another session",
    "signin:session:timed_out": "Session timed out",
    "signin:session:revoked": "Access ended: every session signed out",
    "signin:session:recent_sign_in_required": "Asked to sign in again first",
}
# The method when the row does not name one: the tag's middle part.
METHOD_OF_SOURCE = {"link": "Email link", "passkey": "Passkey", "session": ""}


def events_of(organization: Organization) -> QuerySet[AuthEvent]:
    """Return the organization's sign-in events, newest first: the root of every query here."""
    return AuthEvent.objects.filter(organization=organization,
                                    tag__startswith=SIGN_IN_TAGS).order_by("-created_at", "-id")


def people_in(organization: Organization) -> list[str]:
    """Return the addresses that appear in the organization's history, alphabetically."""
    emails = (events_of(organization).exclude(email="").order_by("email")
              .values_list("email", flat=True).distinct())
    return list(emails[:PEOPLE_LIMIT])


def event_words(event: AuthEvent) -> str:
    """Say what happened, for a person: "Signed in", "Used an expired link"."""
    return EVENT_WORDS.get(event.tag) or event.tag.rsplit(":", 1)[-1].replace("_", " ").capitalize()


def method_words(event: AuthEvent) -> str:
    """Say which way in the event was about: "Email link", "Google", "Passkey"."""
    detail = event.detail if isinstance(event.detail, dict) else {}
    named = detail.get("method") or detail.get("provider")
    if isinstance(named, str) and named:
        return sign_in_method(named)
    source = event.tag.split(":")[1] if event.tag.count(":") >= 2 else ""
    return METHOD_OF_SOURCE.get(source, "")


@dataclass(frozen=True)
class Row:
    """One event as the page and the export show it."""

    at: datetime
    person: str
    what: str
    method: str
    outcome: str
    outcome_key: str
    browser: str
    ip: str
    tag: str


def row_of(event: AuthEvent) -> Row:
    """Describe ``event`` for a person reading the history."""
    return Row(at=event.created_at, person=event.email, what=event_words(event),
               method=method_words(event), outcome=event.get_outcome_display(),
               outcome_key=event.outcome,
               browser=describe_agent(event.user_agent) if event.user_agent else "",
               ip=event.ip or "", tag=event.tag)


DATE_ERRORS = {"invalid": "Enter a date as year-month-day, for example 2030-03-04."}
DATE_LIMITS = [MinValueValidator(EARLIEST, message="Choose a date in 2000 or later."),
               MaxValueValidator(LATEST, message="Choose a date in 2100 or earlier.")]


class HistoryFilterForm(forms.Form):
    """The GET form above the history: person, outcome and a range of days."""

    person = forms.ChoiceField(label="Person", required=False)
    outcome = forms.ChoiceField(
        label="Outcome", required=False,
        choices=[("", "Any outcome"), *AuthEvent.Outcome.choices],
        error_messages={"invalid_choice": "Choose one of the outcomes in the list."})
    since = forms.DateField(
        label="From", required=False, error_messages=DATE_ERRORS,
        validators=DATE_LIMITS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    until = forms.DateField(
        label="To", required=False, error_messages=DATE_ERRORS,
        validators=DATE_LIMITS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def __init__(self, data: Any, *, people: list[str]) -> None:
        super().__init__(data)
        person = self.fields["person"]
        assert isinstance(person, forms.ChoiceField)
        person.choices = [("", "Everyone"), *((email, email) for email in people)]
        person.error_messages["invalid_choice"] = (
            "Choose a person from the list: only people in your organization's history "
            "can be chosen.")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date. Choose an end "
                                    "date on or after the start date.")
        return cleaned


@dataclass
class Search:
    """A validated (or refused) history search: the form and, when valid, its rows."""

    form: HistoryFilterForm
    events: QuerySet[AuthEvent]
    zone: tzinfo

    @property
    def valid(self) -> bool:
        """True unless a filter was given and refused (no filter at all is everything)."""
        return not self.form.is_bound or self.form.is_valid()

    @property
    def querystring(self) -> str:
        """The filter as a query string (no page), for pager and export links."""
        if not self.form.is_bound or not self.form.is_valid():
            return ""
        pairs = [(name, value.isoformat() if isinstance(value, date) else value)
                 for name, value in self.form.cleaned_data.items() if value]
        return urlencode(pairs)


def search(organization: Organization, params: Any, zone: tzinfo) -> Search:
    """Validate ``params`` (a GET QueryDict) and return the organization's matching events."""
    form = HistoryFilterForm(params if _has_filter(params) else None,
                             people=people_in(organization))
    events = events_of(organization)
    if form.is_bound:
        if not form.is_valid():
            return Search(form, events.none(), zone)
        events = _filtered(events, form.cleaned_data, zone)
    return Search(form, events, zone)


def _has_filter(params: Any) -> bool:
    return any(name in params for name in ("person", "outcome", "since", "until"))


def _filtered(events: QuerySet[AuthEvent], wanted: dict[str, Any],
              zone: tzinfo) -> QuerySet[AuthEvent]:
    if wanted.get("person"):
        events = events.filter(email=wanted["person"])
    if wanted.get("outcome"):
        events = events.filter(outcome=wanted["outcome"])
    if wanted.get("since"):
        events = events.filter(created_at__gte=start_of_day(wanted["since"], zone))
    if wanted.get("until"):
        events = events.filter(created_at__lt=start_of_day(wanted["until"] + timedelta(days=1),
                                                           zone))
    return events


def start_of_day(day: date, zone: tzinfo) -> datetime:
    """Return midnight at the start of ``day`` in ``zone``."""
    return datetime.combine(day, time.min, tzinfo=zone)


# --- Export --------------------------------------------------------------------------------

def safe_cell(value: str) -> str:
    """Return ``value`` so that no spreadsheet runs it as a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


class _Line:
    """A file-like object whose ``write`` returns what was written (for ``csv.writer``)."""

    def write(self, value: str) -> str:
        return value


def export_rows(events: QuerySet[AuthEvent], zone: tzinfo) -> Iterator[list[str]]:
    """Yield the header, then one row per event (at most ``EXPORT_LIMIT``), as strings."""
    zone_name = str(getattr(zone, "key", zone))
    yield ["Time (UTC, ISO 8601)", f"Time ({zone_name})", "Person", "What happened",
           "Method", "Outcome", "Browser", "IP address", "Event code"]
    for event in events[:EXPORT_LIMIT].iterator(chunk_size=500):
        row = row_of(event)
        yield [row.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
               format_moment(row.at, zone), row.person, row.what, row.method, row.outcome,
               row.browser, row.ip, row.tag]


def export_csv(events: QuerySet[AuthEvent], zone: tzinfo) -> Iterable[str]:
    """Yield the CSV text of the export, line by line, every cell made safe."""
    writer = csv.writer(_Line())
    for row in export_rows(events, zone):
        yield writer.writerow([safe_cell(cell) for cell in row])
