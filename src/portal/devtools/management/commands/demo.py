"""Load a small, realistic set of demo data: two customers, their people and requests.

Idempotent: the demo is loaded in one transaction, and if its first organization exists the
command changes nothing. Addresses use the reserved ``.example`` domains, so no demo email
can reach a real inbox.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from portal.accounts.models import (
    GoogleWorkspaceDomain,
    MicrosoftTenant,
    Organization,
    User,
)
from portal.accounts.services import add_user, create_organization
from portal.core.clock import now
from portal.servicedesk.models import Comment, ServiceRequest
from portal.servicedesk.services import create_request

NORTHWIND = "Northwind Logistics"
CONTOSO = "Contoso Freight"
# A made-up GUID: it belongs to no real Microsoft Entra directory.
NORTHWIND_TENANT_ID = "3f2b8c1e-6d4a-4b7e-9c05-8a1d2e3f4a5b"
STAFF_EMAIL = "sam@cloudsentry.com"

Status = ServiceRequest.Status
Priority = ServiceRequest.Priority

# (filed by, title, description, status, priority, days ago, [(days ago, who, body)]);
# "who" is a Northwind address, or "staff" for the service desk.
DemoRequest = tuple[str, str, str, str, str, float, list[tuple[float, str, str]]]
NORTHWIND_REQUESTS: list[DemoRequest] = [
    ("bob@northwind.example", "Warehouse label printer offline",
     "The Zebra label printer at dock 3 shows 'offline' on every PC since this morning. "
     "We have restarted the printer and one PC. Outbound shipments are being labelled by "
     "hand at the moment.",
     Status.IN_PROGRESS, Priority.HIGH, 0.2,
     [(0.15, "staff", "Thanks, we are looking at it now. The print server lost its "
                      "connection to that printer's IP after the DHCP lease changed."),
      (0.1, "bob@northwind.example", "Dock 3 says the other printer at dock 4 works fine, "
                                     "in case that helps.")]),
    ("alice@northwind.example", "New starter: laptop and accounts for Priya Shah",
     "Priya Shah starts as a dispatcher on Monday. She needs a laptop, an email account "
     "and access to the dispatch shared drive.",
     Status.WAITING, Priority.NORMAL, 3,
     [(2.5, "staff", "The laptop is ready. Which manager should approve access to the "
                     "dispatch shared drive?")]),
    ("bob@northwind.example", "VPN disconnects every 10 minutes",
     "Since the update last week the VPN drops every ten minutes for the two of us working "
     "from the Leeds office.",
     Status.NEW, Priority.NORMAL, 0.5, []),
    ("alice@northwind.example", "Shared mailbox for customer claims",
     "Please create claims@northwind.example as a shared mailbox for Alice, Bob and the "
     "claims team.",
     Status.RESOLVED, Priority.LOW, 9,
     [(8, "staff", "Done: the mailbox is created and the three of you have access. It may "
                   "take an hour to appear in Outlook."),
      (7.5, "alice@northwind.example", "It is there now, thank you.")]),
    ("alice@northwind.example", "Replace failing disk in the office NAS",
     "The NAS in the server cupboard beeps and shows a warning on disk 2.",
     Status.CLOSED, Priority.HIGH, 30,
     [(29, "staff", "Disk 2 replaced and the array rebuilt overnight. No data was lost.")]),
    ("bob@northwind.example", "Phishing email pretending to be our bank",
     "Several people got an email that looks like it is from our bank asking them to "
     "confirm payment details. Nobody clicked as far as we know.",
     Status.IN_PROGRESS, Priority.URGENT, 1,
     [(0.9, "staff", "We have blocked the sender and removed the message from all "
                     "mailboxes. Please forward any new ones as attachments.")]),
]


class Command(BaseCommand):
    help = "Load demo organizations, people and service requests (safe to run twice)."

    def handle(self, *args: Any, **options: Any) -> None:
        if Organization.objects.filter(name=NORTHWIND).exists():
            self.stdout.write("Demo data already loaded.")
            return
        with transaction.atomic():
            self._load()
        self.stdout.write(self.style.SUCCESS(
            "Loaded demo data: Northwind Logistics (alice@, bob@, carol@ (turned off) at "
            "northwind.example), Contoso Freight (dan@contoso.example) and staff "
            f"{STAFF_EMAIL}. Sign in at /signin/ as any of them but carol, whose account "
            "is turned off to show what that looks like."))

    def _load(self) -> None:
        northwind = create_organization(NORTHWIND, ["northwind.example"], auto_join=False)
        northwind.allow_email_link = northwind.allow_google = northwind.allow_microsoft = True
        northwind.save()
        GoogleWorkspaceDomain.objects.create(organization=northwind, domain="northwind.example")
        MicrosoftTenant.objects.create(organization=northwind, tenant_id=NORTHWIND_TENANT_ID)
        people = {
            "alice@northwind.example": add_user("alice@northwind.example", northwind,
                                                admin=True, full_name="Alice Moreno"),
            "bob@northwind.example": add_user("bob@northwind.example", northwind,
                                              full_name="Bob Okafor"),
        }
        carol = add_user("carol@northwind.example", northwind, full_name="Carol Jensen")
        carol.is_active = False  # shows what a turned-off account looks like
        carol.save(update_fields=["is_active"])

        staff = add_user(STAFF_EMAIL, None, staff=True, full_name="Sam Patel")
        if not staff.is_superuser:
            staff.is_superuser = True
            staff.save(update_fields=["is_superuser"])

        moment = now()
        # Oldest first, so request numbers grow with time as they would have.
        for filer, title, description, status, priority, days, comments in sorted(
                NORTHWIND_REQUESTS, key=lambda row: -row[5]):
            self._add_request(northwind, people[filer], staff, moment, title, description, status,
                              priority, days, [(d, people.get(who, staff), body)
                                               for d, who, body in comments])

        contoso = (Organization.objects.filter(name=CONTOSO).first()
                   or create_organization(CONTOSO, ["contoso.example"]))
        dan = add_user("dan@contoso.example", contoso, admin=True, full_name="Dan Whitaker")
        if not contoso.service_requests.exists():
            self._add_request(
                contoso, dan, staff, moment, "Conference room screen will not connect",
                "The screen in the big meeting room does not find any laptop over HDMI.",
                Status.NEW, Priority.NORMAL, 2, [])

    def _add_request(self, org: Organization, filer: User, staff: User, moment: Any,
                     title: str, description: str, status: str, priority: str, days: float,
                     comments: list[tuple[float, User, str]]) -> None:
        created = moment - timedelta(days=days)
        request = create_request(org, title=title, description=description,
                                 priority=priority, created_by=filer)
        updated = created
        for ago, author, body in comments:
            at = moment - timedelta(days=ago)
            Comment.objects.create(service_request=request, author=author, body=body,
                                   from_staff=author.is_staff, created_at=at)
            updated = max(updated, at)
        request.status = status
        request.created_at = created
        request.updated_at = updated
        request.save(update_fields=["status", "created_at", "updated_at"])
