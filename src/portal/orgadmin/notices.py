"""The emails a person gets when one of their organization's admins changes their account.

Made admin, no longer admin, turned off, turned back on: each is queued through the outbox
in the transaction of the change, so a change that rolls back sends nothing. Times are in
the recipient's own zone. Plain text and HTML, no images, no tracking.
"""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

from portal.accounts.models import Organization, User
from portal.core.clock import now
from portal.core.moments import format_moment, zone_for
from portal.mail.outbox import enqueue

KIND = "orgadmin.notice"
SUBJECTS = {
    "made_admin": "You are now an admin of {organization}",
    "admin_removed": "You are no longer an admin of {organization}",
    "disabled": "Your {brand} account was turned off",
    "enabled": "Your {brand} account was turned back on",
}


def account_changed(person: User, organization: Organization, change: str, *,
                    by: User) -> None:
    """Queue the notice that ``by`` made ``change`` (a key of ``SUBJECTS``) to ``person``."""
    brand = settings.PORTAL_BRAND
    context = {"brand": brand, "change": change, "organization": organization.name,
               "by": by.get_full_name(), "by_email": by.email, "email": person.email,
               "when": format_moment(now(), zone_for(person)),
               "base_url": str(settings.PORTAL_BASE_URL).rstrip("/")}
    enqueue(to=person.email, kind=KIND,
            subject=SUBJECTS[change].format(organization=organization.name, brand=brand),
            text=render_to_string("orgadmin/email/account_changed.txt", context),
            html=render_to_string("orgadmin/email/account_changed.html", context))
