"""One way to write a moment, in the reader's own time zone, with the zone named.

Pages use the ``moment`` template filter (the zone is the request's active one); emails and
exports, which have no request, call ``format_moment`` with the recipient's ``zone_for``.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime, tzinfo
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateformat import format as date_format

# "1 Dec 2026, 14:51 GMT": day first, 24-hour clock, the zone's own abbreviation.
MOMENT_FORMAT = "j M Y, H:i T"


def zone_named(name: str | None) -> tzinfo | None:
    """Return the IANA zone called ``name``, or None for a blank or unknown name."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def zone_for(user: Any) -> tzinfo:
    """Return the zone a person reads times in: their own, else their organization's."""
    own = zone_named(getattr(user, "time_zone", ""))
    if own is not None:
        return own
    organization = getattr(user, "organization", None)
    fallback = zone_named(getattr(organization, "time_zone", ""))
    return fallback or zoneinfo.ZoneInfo(settings.TIME_ZONE)


def format_moment(value: datetime | None, zone: tzinfo | None = None) -> str:
    """Write ``value`` in ``zone`` (default: the active zone) as "1 Dec 2026, 14:51 GMT"."""
    if value is None:
        return ""
    local = timezone.localtime(value, zone) if timezone.is_aware(value) else value
    return date_format(local, MOMENT_FORMAT)
