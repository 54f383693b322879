from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.models import Organization
from portal.accounts.services import create_organization


class Command(BaseCommand):
    help = "Create an organization with a verified email domain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--domain", action="append", default=[],
                            help="A verified email domain (repeatable).")
        parser.add_argument("--auto-join", action="store_true",
                            help="Anyone at a verified domain may sign in and join.")

    def handle(self, *args: Any, name: str, domain: list[str], auto_join: bool,
               **options: Any) -> None:
        if Organization.objects.filter(name=name).exists():
            raise CommandError(f"An organization named {name!r} already exists.")
        org = create_organization(name, [d.lower() for d in domain], auto_join=auto_join)
        self.stdout.write(f"Created organization {org.name} "
                          f"(domains: {', '.join(domain) or 'none'}; "
                          f"auto-join: {'on' if auto_join else 'off'}).")
