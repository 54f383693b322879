"""Service request updates by email: who hears about a staff reply or a status change.

Staff answer in the staff admin (``portal.servicedesk.admin``), which calls
``announce_staff_update`` once per save, inside the admin's transaction: the change and
its emails commit together or not at all (decision 0031). The rules:

- **What counts:** a staff reply, a change of status, or both in one save. Both in one
  save is one change, so one email each, carrying the reply and the new status.
- **Who hears:** the person who filed the request, unless they chose "off"
  (``User.request_updates``), and everyone of the request's organization who chose
  "organization". Each of them once per change, whatever the overlap.
- **Who never does:** the person who made the change (a staff member is never emailed
  about their own reply), anyone turned off, anyone of another organization (a filer who
  has since moved, or staff who filed on a customer's behalf), and everyone of an
  organization that is turned off.
- A customer's own comment emails nobody here: staff read the queue, and the filer
  knows what they wrote (``servicedesk.services.add_comment`` never calls this).
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import strip_spaces_between_tags

from portal.accounts.models import User
from portal.core.moments import format_moment, zone_for
from portal.mail.outbox import enqueue
from portal.servicedesk.models import Comment, ServiceRequest

KIND = "notice.request_update"
Choice = User.RequestUpdates


def recipients_of(service_request: ServiceRequest, actor: User | None) -> QuerySet[User]:
    """Return who is emailed about a staff change to ``service_request`` by ``actor``."""
    wants = Q(request_updates=Choice.ORGANIZATION)
    if service_request.created_by_id is not None:
        wants |= Q(pk=service_request.created_by_id, request_updates=Choice.MINE)
    people = (User.objects.filter(
        wants, is_active=True, membership__organization_id=service_request.organization_id,
        membership__organization__is_active=True)
        .select_related("membership__organization").order_by("pk"))
    if actor is not None:
        people = people.exclude(pk=actor.pk)
    return people


def announce_staff_update(service_request: ServiceRequest, *, actor: User | None,
                          reply: Comment | None = None,
                          previous_status: str | None = None) -> int:
    """Queue one email per recipient about this change; return how many were queued.

    ``reply`` is the staff comment the change added, if any; ``previous_status`` the status
    before it (None, or the same as now: the status did not change). Call inside the
    transaction that made the change.
    """
    status_changed = (previous_status is not None
                      and previous_status != service_request.status)
    if reply is None and not status_changed:
        return 0
    base = str(settings.PORTAL_BASE_URL).rstrip("/")
    brand = settings.PORTAL_BRAND
    status = service_request.get_status_display()
    previous = (ServiceRequest.Status(previous_status).label
                if status_changed and previous_status in ServiceRequest.Status.values
                else previous_status)
    subject = (f"New reply on {service_request.reference}: {service_request.title}"
               if reply is not None else
               f"{service_request.reference} is now {status}: {service_request.title}")
    count = 0
    for person in recipients_of(service_request, actor):
        context = {
            "brand": brand, "sr": service_request, "reply": reply,
            "replied_by": (reply.author.get_short_name()
                           if reply is not None and reply.author else ""),
            "status": status, "previous_status": previous if status_changed else "",
            "when": format_moment(reply.created_at if reply else service_request.updated_at,
                                  zone_for(person)),
            "request_url": base + service_request.get_absolute_url(),
            "preferences_url": base + reverse("account:notifications"),
            "filed_it": person.pk == service_request.created_by_id,
            "organization": service_request.organization.name,
        }
        enqueue(to=person.email, subject=subject, kind=KIND,
                text=render_to_string("notifications/email/request_update.txt", context),
                html=strip_spaces_between_tags(
                    render_to_string("notifications/email/request_update.html", context)))
        count += 1
    return count
