"""An organization's sign-in policy, as its admins choose it.

Rules kept here (each has a test in ``tests/orgadmin``):

- **A way in stays open.** At least one of email link, Google and Microsoft (counted only
  where this portal has it set up) stays allowed. A passkey alone is not enough: a
  passkey is added after signing in some other way, so new people (and anyone with a new
  phone) would be locked out.
- **No surprise lock-out.** Turning off the way the admin is signed in with right now is
  only done after they confirm it (``turns_off_own_way``); their current session goes on.
- **Consistent.** Passkeys cannot be required of admins while they are not allowed.
- **Choices, not free text.** The default time zone is an IANA name from the list offered.
- Verified and auto-join domains are shown, never changed here: Cloud Sentry staff verify
  them, because a domain decides who may join.
- The sign-in flows read these fields at every sign-in (``Organization.allows``), so a
  change applies to the next sign-in of every member.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from portal.accounts.models import Organization, User
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.orgadmin.errors import BadChoice, NoWayIn
from portal.signin.oidc.providers import configured_providers
from portal.signin.sessions import SESSION_METHOD_KEY

# The switches, in the order the page shows them.
WAYS_IN = {"allow_email_link": "Email sign-in link", "allow_google": "Sign in with Google",
           "allow_microsoft": "Sign in with Microsoft", "allow_passkey": "Passkeys"}
SWITCHES = (*WAYS_IN, "strict_same_browser", "require_passkeys_for_admins",
            "new_sign_in_notices")
FIELDS = (*SWITCHES, "time_zone")
# How a session's method (signin.sessions.SESSION_METHOD_KEY) maps to the switch it needs.
_WAY_OF_METHOD = {"email": "allow_email_link", "email_code": "allow_email_link",
                  "email_approval": "allow_email_link", "invitation": "allow_email_link",
                  "google": "allow_google", "microsoft": "allow_microsoft",
                  "passkey": "allow_passkey"}


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Return the IANA zone names offered, sorted ("Africa/Abidjan" … "UTC")."""
    names = {n for n in zoneinfo.available_timezones()
             if not n.startswith(("posix/", "right/", "Etc/", "SystemV/"))
             and n not in {"localtime", "Factory"}}
    return tuple(sorted(names | {"UTC"}))


def read_policy(data: Mapping[str, Any]) -> dict[str, Any]:
    """Read the submitted form: a switch is on when its box was ticked; check the zone."""
    values: dict[str, Any] = {name: data.get(name) in ("on", "true", "1") for name in SWITCHES}
    zone = str(data.get("time_zone", "")).strip()
    if zone not in zone_names():
        raise BadChoice("Choose your organization's time zone from the list.")
    values["time_zone"] = zone
    return values


def current_policy(organization: Organization) -> dict[str, Any]:
    return {name: getattr(organization, name) for name in FIELDS}


def turns_off_own_way(request: HttpRequest, organization: Organization,
                      values: Mapping[str, Any]) -> str:
    """Return the name of the way this admin signed in with, if ``values`` turns it off."""
    switch = _WAY_OF_METHOD.get(str(request.session.get(SESSION_METHOD_KEY, "")))
    if switch and getattr(organization, switch) and not values[switch]:
        return WAYS_IN[switch]
    return ""


def check_policy(values: Mapping[str, Any]) -> None:
    """Raise ``NoWayIn`` unless an email link, or Google or Microsoft where this portal
    offers them, stays allowed (a provider that is not set up lets nobody in); raise
    ``BadChoice`` for passkeys required of admins but not allowed."""
    if values["require_passkeys_for_admins"] and not values["allow_passkey"]:
        raise BadChoice("Requiring passkeys for admins needs passkeys allowed. Allow "
                        "passkeys, or stop requiring them.")
    offered = {p.name for p in configured_providers()}
    if not (values["allow_email_link"]
            or (values["allow_google"] and "google" in offered)
            or (values["allow_microsoft"] and "microsoft" in offered)):
        raise NoWayIn()


def change_policy(request: HttpRequest, organization: Organization, admin: User,
                  values: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Save the policy; return what changed as ``{field: [old, new]}`` (audited)."""
    check_policy(values)
    with transaction.atomic():
        locked = Organization.objects.select_for_update().get(pk=organization.pk)
        changes = {name: [getattr(locked, name), values[name]] for name in FIELDS
                   if getattr(locked, name) != values[name]}
        if not changes:
            return {}
        for name, (_, new) in changes.items():
            setattr(locked, name, new)
            setattr(organization, name, new)
        locked.save(update_fields=list(changes))
        record_event(Tag.ORGADMIN_POLICY_CHANGED, request=request, organization=organization,
                     actor=admin, changes=changes)
    return changes
