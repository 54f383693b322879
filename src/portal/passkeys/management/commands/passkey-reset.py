"""``portal passkey-reset EMAIL``: staff recovery when a passkey is lost (docs/passkeys.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.services import InvalidEmail, clean_email, find_user
from portal.passkeys import enrolment


class Command(BaseCommand):
    help = ("Remove every passkey of a person, sign them out everywhere, and print a new "
            "one-time enrolment link for them (for a lost or stolen passkey).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, email: str, **options: Any) -> None:
        try:
            user = find_user(clean_email(email))
        except InvalidEmail as exc:
            raise CommandError(str(exc)) from None
        if user is None:
            raise CommandError(f"Nobody has the address {email!r}; nothing was changed.")
        removed, link = enrolment.reset(user)
        self.stdout.write(
            f"Removed {removed} passkey{'s' if removed != 1 else ''} of {user.email} and "
            "signed them out everywhere (recorded in the audit trail; they were emailed).\n"
            "Give them this one-time enrolment link (it works once, for "
            f"{enrolment.lifetime_text()}), by a channel other than their email:\n{link}")
