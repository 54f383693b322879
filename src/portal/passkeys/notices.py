"""The notice a person gets when a passkey is added to or removed from their account.

If someone else made the change (a session left open, a stolen cookie), this email is how
the owner finds out (ASVS 6.3.7, 7.4.3). It goes through the outbox in the caller's
transaction, so a change that rolls back sends nothing. Plain text and HTML, no images,
no tracking: the one link is the Passkeys page.
"""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from portal.accounts.models import User
from portal.core.clock import now
from portal.core.moments import format_moment, zone_for
from portal.mail.outbox import enqueue

KIND = "passkey.notice"
ACTIONS = {"added": "A passkey was added to your account",
           "removed": "A passkey was removed from your account",
           "reset": "Your passkeys were removed by Cloud Sentry support"}


def passkey_changed(user: User, action: str, name: str = "") -> None:
    """Queue the notice that ``action`` ("added", "removed", "reset") happened to ``user``."""
    base = str(settings.PORTAL_BASE_URL).rstrip("/")
    context = {"brand": settings.PORTAL_BRAND, "action": action, "name": name,
               "when": format_moment(now(), zone_for(user)), "passkeys_url": f"{base}/passkeys/",
               "sessions_url": f"{base}/signin/sessions/", "email": user.email}
    enqueue(to=user.email, subject=f"{ACTIONS[action]} ({settings.PORTAL_BRAND})",
            text=render_to_string("passkeys/email/changed.txt", context),
            html=render_to_string("passkeys/email/changed.html", context), kind=KIND)
