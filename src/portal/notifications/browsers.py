"""The new-sign-in notice: email a person when their account signs in from a new browser.

If someone else got in (a forwarded link, a read mailbox, a borrowed laptop), this email
is how the owner finds out, with what to do about it (decision 0030). The rules:

- **A browser** is the signed device cookie of ``portal.signin.devices``: a random id,
  kept for a year. ``KnownBrowser`` holds one row per (person, SHA-256 of that id).
- **Once per new browser.** The first sign-in of a person from a browser adds its row and
  queues one notice; every later sign-in from it only counts. A browser without the
  cookie (a private window, cleared cookies) is a new browser: we cannot know better.
- **Not for the very first browser.** A person's first sign-in ever (or the first since
  this feature shipped) has nothing to compare with, so it sends nothing.
- **The organization decides** (``Organization.new_sign_in_notices``, on by default);
  people of no organization (Cloud Sentry staff) always get it. Browsers are recorded
  even when notices are off, so turning them on later tells only of new ones.
- **In the sign-in's transaction, and cheap.** ``notice_new_browser`` receives
  ``portal.signin.signals.signed_in``, sent inside ``finish_sign_in``: the row and the
  outbox message commit with the sign-in or not at all. A known browser costs one
  statement (an upsert that also says whether other browsers exist); a new one adds the
  organization (when not already loaded) and the outbox row. Nothing here waits on mail.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import strip_spaces_between_tags

from portal.accounts.models import User
from portal.core.clock import now
from portal.core.http import client_ip, describe_agent, user_agent
from portal.core.moments import format_moment, zone_for
from portal.mail.outbox import enqueue
from portal.notifications.models import KnownBrowser

KIND = "notice.new_sign_in"


def device_hash(device: str) -> str:
    return hashlib.sha256(device.encode()).hexdigest()


def record_browser(user: User, device: str, moment: datetime) -> tuple[bool, bool]:
    """Count a sign-in of ``user`` from ``device``; return (is it new, are there others).

    One statement, so the sign-in pays one query whether the browser is known or new, and
    two sign-ins from the same new browser at once cannot both see it as new: the upsert
    lets exactly one of them insert (``sign_ins`` is 1 only for the statement that created
    the row). The subquery answers "has this person any other browser?" from the rows as
    they were before this statement, which is the question for a first browser.
    """
    table = connection.ops.quote_name(KnownBrowser._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(moment)
    digest = device_hash(device)
    # The table and column names are ours; every value is a parameter.
    sql = (f"INSERT INTO {table} (user_id, device_hash, first_seen_at, last_seen_at, sign_ins) "  # noqa: S608
           "VALUES (%s, %s, %s, %s, 1) "
           "ON CONFLICT (user_id, device_hash) DO UPDATE "
           f"SET last_seen_at = excluded.last_seen_at, sign_ins = {table}.sign_ins + 1 "
           f"RETURNING sign_ins, EXISTS (SELECT 1 FROM {table} AS other "
           "WHERE other.user_id = %s AND other.device_hash <> %s)")
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, digest, stamp, stamp, user.pk, digest])
        sign_ins, others = cursor.fetchone()
    return sign_ins == 1, bool(others)


def notices_wanted(user: User) -> bool:
    """Return whether ``user``'s organization sends new-sign-in notices (no organization: yes)."""
    organization = user.organization
    return organization is None or organization.new_sign_in_notices


def notice_new_browser(sender: Any, *, request: Any, user: User, method: str, device: str,
                       **kwargs: Any) -> None:
    """Receive ``signed_in``: record the browser; queue the notice if it is a new one."""
    if not device:
        return
    moment = now()
    new, others = record_browser(user, device, moment)
    # Known: nothing to say. The very first browser: nothing to compare with (decision 0030).
    if not new or not others:
        return
    if not notices_wanted(user):
        return
    queue_notice(user, method=method, agent=user_agent(request), ip=client_ip(request),
                 moment=moment)


def queue_notice(user: User, *, method: str, agent: str, ip: str, moment: datetime) -> None:
    """Queue the notice that ``user`` signed in by ``method`` from a new browser."""
    base = str(settings.PORTAL_BASE_URL).rstrip("/")
    brand = settings.PORTAL_BRAND
    context = {
        "brand": brand, "email": user.email, "method": method,
        "browser": describe_agent(agent), "ip": ip or "an unknown address",
        "when": format_moment(moment, zone_for(user)),
        "sessions_url": base + reverse("signin:sessions"),
        "preferences_url": base + reverse("account:notifications"),
        "by_organization": user.organization is not None,
    }
    enqueue(to=user.email, subject=f"New sign-in to your {brand} account", kind=KIND,
            text=render_to_string("notifications/email/new_sign_in.txt", context),
            html=strip_spaces_between_tags(
                render_to_string("notifications/email/new_sign_in.html", context)))
