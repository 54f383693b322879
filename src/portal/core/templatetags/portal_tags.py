"""Template filters shared by the portal's pages."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils.timesince import timesince

from portal.core.clock import now
from portal.core.http import describe_agent
from portal.core.moments import format_moment

register = template.Library()

SIGN_IN_METHODS = {"email": "Email link", "email_code": "Code from the email",
                   "email_approval": "Email link, approved on another device",
                   "google": "Google", "microsoft": "Microsoft",
                   "passkey": "Passkey", "invitation": "Invitation link",
                   "enrolment": "Passkey enrolment link"}


@register.filter(name="describe_agent")
def describe_agent_filter(agent: str | None) -> str:
    """Render a User-Agent string as "Firefox on Windows"."""
    return describe_agent(agent or "")


@register.filter
def sign_in_method(method: str | None) -> str:
    """Render a stored sign-in method (``email``, ``google``…) as words for a person."""
    return SIGN_IN_METHODS.get(method or "", method or "Unknown")


@register.filter
def ago(moment: datetime | None) -> str:
    """Render a past moment as "just now" or "5 minutes ago"."""
    if moment is None:
        return "never"
    if now() - moment < timedelta(minutes=1):
        return "just now"
    return f"{timesince(moment, now())} ago"


@register.filter
def moment(value: datetime | None) -> str:
    """Render a moment in the reader's zone, the zone named: "1 Dec 2026, 14:51 GMT"."""
    return format_moment(value)
