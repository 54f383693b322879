from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.models import Organization
from portal.accounts.services import AccountError, add_user
from portal.passkeys import enrolment


class Command(BaseCommand):
    help = "Create a person who can sign in (no password: they use an email link or SSO)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--org", help="Name of the organization they belong to.")
        parser.add_argument("--name", default="", help="Full name.")
        parser.add_argument("--admin", action="store_true", help="Organization admin.")
        parser.add_argument("--staff", action="store_true", help="Cloud Sentry staff (admin).")

    def handle(self, *args: Any, email: str, org: str | None, name: str, admin: bool,
               staff: bool, **options: Any) -> None:
        organization = None
        if org:
            organization = Organization.objects.filter(name=org).first()
            if organization is None:
                raise CommandError(f"No organization named {org!r}. Create it with "
                                   f"`portal addorg {org!r} --domain …` first.")
        elif not staff:
            raise CommandError("Give --org NAME (or --staff for Cloud Sentry staff).")
        try:
            user = add_user(email, organization, admin=admin, staff=staff, full_name=name)
        except AccountError as exc:  # a bad address, or already in another organization
            raise CommandError(str(exc)) from None
        if staff and not user.is_superuser:
            user.is_superuser = True
            user.save(update_fields=["is_superuser"])
        self.stdout.write(f"{user.email} can now sign in"
                          f"{' as staff' if staff else ''}"
                          f"{f' to {organization.name}' if organization else ''}.")
        if staff:
            # The admin opens only with a passkey; this link is the way to add the first one.
            link = enrolment.issue(user, by="adduser")
            self.stdout.write(
                "The staff admin opens only with a passkey. Give them this one-time "
                f"enrolment link (it works once, for {enrolment.lifetime_text()}); it signs "
                f"them in and goes straight to adding a passkey:\n{link}")
