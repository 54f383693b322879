"""Which time zone a person reads times in, and how they choose it (``/account/time-zone/``).

Rules:

- A person's zone is an IANA name from ``choosable_zones()`` (the zone database's regions
  plus UTC), or blank: blank means their organization's default (``Organization.time_zone``,
  set by its admins), and UTC for staff, who belong to no organization.
- Anything else sent in the form is refused with a plain message (400) and nothing changes.
- What the zone is used for lives in ``portal.core.moments`` (``zone_for``) and the zone
  middleware (``portal.core.middleware.TimeZoneMiddleware``).
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, tzinfo
from functools import cache

from django import forms
from django.conf import settings

from portal.accounts.models import User
from portal.core.clock import now
from portal.core.moments import zone_named

# The zone database's continents and oceans: every place name people look for lives under
# one of them. Older aliases such as "US/Eastern" are left out; their current names stay.
REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia",
           "Europe", "Indian", "Pacific")
UTC_NAME = "UTC"


@cache
def choosable_zones() -> frozenset[str]:
    """Return every zone name a person may choose."""
    names = {name for name in zoneinfo.available_timezones()
             if name.split("/", 1)[0] in REGIONS and "/" in name}
    return frozenset(names | {UTC_NAME})


def offset_words(zone: tzinfo, at: datetime) -> str:
    """Return the zone's offset from UTC at ``at``: "UTC+01:00", "UTC-03:30", "UTC"."""
    offset = at.astimezone(zone).utcoffset()
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{rest:02d}"


def place_words(name: str) -> str:
    """Return the place part of a zone name for a list: "Argentina / Buenos Aires"."""
    return name.split("/", 1)[-1].replace("_", " ").replace("/", " / ")


def grouped_choices(at: datetime | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """Return the zones grouped by region, each labelled with its place and current offset."""
    at = at or now()
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(choosable_zones()):
        region = name.split("/", 1)[0] if "/" in name else UTC_NAME
        label = (name if name == UTC_NAME
                 else f"{place_words(name)} ({offset_words(zoneinfo.ZoneInfo(name), at)})")
        groups.setdefault(region, []).append((name, label))
    return [(region, groups[region]) for region in (UTC_NAME, *REGIONS) if region in groups]


def default_zone_name(user: User) -> str:
    """Return the zone a person gets when they choose none: their organization's, else UTC."""
    organization = user.organization
    named = zone_named(organization.time_zone) if organization is not None else None
    return str(getattr(named, "key", "")) or settings.TIME_ZONE


def effective_zone_name(user: User) -> str:
    """Return the zone this person reads times in now."""
    return user.time_zone if zone_named(user.time_zone) else default_zone_name(user)


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone", required=False,
        error_messages={"invalid_choice": "Choose a time zone from the list, for example "
                                          "Europe/Berlin, or your organization's default."})

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["time_zone"]
        assert isinstance(field, forms.ChoiceField)
        # Kept for the template, which draws the select with its groups.
        whose = "My organization's default" if user.organization else "The portal's default"
        self.default_label = f"{whose} ({default_zone_name(user)})"
        self.groups = grouped_choices()
        field.choices = [("", self.default_label), *self.groups]


def choose_time_zone(user: User, name: str) -> None:
    """Set the person's zone (blank: the organization's default). ``name`` is validated."""
    if name and name not in choosable_zones():
        raise ValueError(f"not a choosable time zone: {name!r}")
    user.time_zone = name
    user.save(update_fields=["time_zone"])
