"""Verbs of the service desk: which requests a person may see, filing one, commenting.

Every read goes through ``requests_for(user)``, which is scoped to the person's own
organization; the home page's overview, compiled once, takes the same scope from
``organization_for(user)``. Views never query ``ServiceRequest`` directly, so no view can
forget the scope and show one customer another customer's request. Attachments are reached
the same way (``attachment_for``): through the request, so through the scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Func, IntegerField, Max, Q, QuerySet, Subquery

from portal.accounts.models import Organization, User
from portal.core.clock import now
from portal.core.prepared import Prepared
from portal.servicedesk import attachments as attached
from portal.servicedesk.models import Attachment, Comment, ServiceRequest

# Numbers start here so a new customer's first request does not read "SR-1".
FIRST_NUMBER = 1001

OPEN_STATUSES = (ServiceRequest.Status.NEW, ServiceRequest.Status.IN_PROGRESS,
                 ServiceRequest.Status.WAITING)
CLOSED_STATUSES = (ServiceRequest.Status.RESOLVED, ServiceRequest.Status.CLOSED)


class ServiceDeskError(Exception):
    """Base of the service desk's domain errors."""


class NoOrganization(ServiceDeskError):
    """The person belongs to no organization, so has no requests to file or see."""


class RequestNotFound(ServiceDeskError):
    """No request by that number in the person's organization (or it is not theirs)."""


class RequestClosed(ServiceDeskError):
    """The request is closed; the conversation continues in a new request."""


class AttachmentNotFound(ServiceDeskError):
    """No such attachment on a request the person may see."""


def organization_for(user: User) -> Organization | None:
    """Return the organization whose requests ``user`` works with, if any."""
    if not user.is_authenticated or not user.is_active:
        return None
    return user.organization


def requests_for(user: User) -> QuerySet[ServiceRequest]:
    """Return the requests ``user`` may see: their organization's, and nobody else's."""
    org = organization_for(user)
    if org is None:
        return ServiceRequest.objects.none()
    return ServiceRequest.objects.filter(organization=org)


def open_requests(queryset: QuerySet[ServiceRequest]) -> QuerySet[ServiceRequest]:
    return queryset.filter(status__in=OPEN_STATUSES)


def closed_requests(queryset: QuerySet[ServiceRequest]) -> QuerySet[ServiceRequest]:
    return queryset.filter(status__in=CLOSED_STATUSES)


@dataclass(frozen=True)
class Overview:
    """What the portal home shows of the visible requests."""

    open_requests: Sequence[ServiceRequest]  # the newest ``open_limit`` open ones
    open_count: int  # all open ones
    recent_closed: Sequence[ServiceRequest]  # the newest ``closed_limit`` closed ones


def overview_queryset(organization_id: int, open_limit: int,
                      closed_limit: int) -> QuerySet[ServiceRequest]:
    """The home page's rows of one organization, newest first, as one query.

    The newest ``open_limit`` open and ``closed_limit`` closed requests, picked by two
    limited subqueries of ids; each row carries the count of all open ones (a scalar
    subquery). A window function numbering both groups, filtered on the number, said the
    same, but Django took over 4 ms to compile it; this one takes about 2, and runs
    compiled once (``OVERVIEW``).
    """
    newest = ("-updated_at", "-id")
    mine = ServiceRequest.objects.filter(organization_id=organization_id)
    open_rows = open_requests(mine)
    open_ids = open_rows.order_by(*newest)[:open_limit].values("pk")
    closed_ids = closed_requests(mine).order_by(*newest)[:closed_limit].values("pk")
    count_open = open_rows.order_by().annotate(
        n=Func(F("pk"), function="COUNT", output_field=IntegerField())).values("n")
    return (mine.filter(Q(pk__in=open_ids) | Q(pk__in=closed_ids))
            .annotate(open_count=Subquery(count_open)).order_by(*newest))


OVERVIEW = Prepared(overview_queryset)


def overview(user: User, *, open_limit: int, closed_limit: int) -> Overview:
    """Return what the portal home shows of the requests ``user`` may see, in one query."""
    org = organization_for(user)
    rows = [] if org is None else OVERVIEW.rows(org.pk, open_limit, closed_limit)
    shown_open = [row for row in rows if row.status in OPEN_STATUSES]
    return Overview(open_requests=shown_open,
                    open_count=shown_open[0].open_count if shown_open else 0,  # type: ignore[attr-defined]
                    recent_closed=[row for row in rows if row.status not in OPEN_STATUSES])


def get_request(user: User, number: int) -> ServiceRequest:
    """Return request ``number`` of the person's organization, or raise ``RequestNotFound``.

    A request of another organization is "not found", not "forbidden": the answer must not
    tell anyone that SR-1042 exists elsewhere.
    """
    found = requests_for(user).select_related("created_by").filter(number=number).first()
    if found is None:
        raise RequestNotFound(number)
    return found


def attachment_for(user: User, number: int, attachment_id: int) -> Attachment:
    """Return an attachment of request ``number`` of the person's organization, or raise.

    Another organization's attachment, or one of another request of the same
    organization under this number, is "not found" like an id that does not exist.
    """
    found = (Attachment.objects.filter(pk=attachment_id,
                                       service_request__in=requests_for(user).filter(
                                           number=number))
             .select_related("service_request").first())
    if found is None:
        raise AttachmentNotFound(attachment_id)
    return found


def allocate_number(organization: Organization) -> int:
    """Return the next free request number of ``organization``; call inside a transaction.

    The organization's row is locked first, so two people filing at the same moment take
    turns (on PostgreSQL ``SELECT … FOR UPDATE``; SQLite serializes writers itself). The
    unique constraint on (organization, number) stays as the backstop.
    """
    Organization.objects.select_for_update().only("pk").get(pk=organization.pk)
    highest = (ServiceRequest.objects.filter(organization=organization)
               .aggregate(highest=Max("number"))["highest"])
    return FIRST_NUMBER if highest is None else highest + 1


@transaction.atomic
def create_request(organization: Organization, *, title: str, description: str,
                   priority: str = ServiceRequest.Priority.NORMAL,
                   created_by: User | None = None) -> ServiceRequest:
    """File a request for ``organization`` (also used by staff in the admin)."""
    moment = now()
    return ServiceRequest.objects.create(
        organization=organization, number=allocate_number(organization), title=title,
        description=description, priority=priority, created_by=created_by,
        created_at=moment, updated_at=moment)


@transaction.atomic
def file_request(user: User, *, title: str, description: str,
                 priority: str = ServiceRequest.Priority.NORMAL,
                 attachments: Sequence[attached.CheckedFile] = ()) -> ServiceRequest:
    """File a new request in the name of ``user``'s organization, with its files."""
    org = organization_for(user)
    if org is None:
        raise NoOrganization
    filed = create_request(org, title=title, description=description, priority=priority,
                           created_by=user)
    attached.store(attachments, filed, comment=None, uploaded_by=user,
                   moment=filed.created_at)
    return filed


@transaction.atomic
def add_comment(user: User, service_request: ServiceRequest, body: str,
                attachments: Sequence[attached.CheckedFile] = ()) -> Comment:
    """Add a customer's comment to a request of their own organization.

    A reply on a request that waits on the customer, or that was resolved, puts it back in
    the queue (``in progress``): the customer has said something staff must read. A closed
    request takes no more comments.
    """
    org = organization_for(user)
    if org is None or org.pk != service_request.organization_id:
        # Defence in depth: views fetch through requests_for, but a caller that does not
        # must still not write into another organization's conversation.
        raise RequestNotFound(service_request.number)
    locked = ServiceRequest.objects.select_for_update().get(pk=service_request.pk)
    if locked.status == ServiceRequest.Status.CLOSED:
        raise RequestClosed(locked.number)
    moment = now()
    comment = Comment.objects.create(service_request=locked, author=user, body=body,
                                     from_staff=False, created_at=moment)
    fields = ["updated_at"]
    if locked.status in (ServiceRequest.Status.WAITING, ServiceRequest.Status.RESOLVED):
        locked.status = ServiceRequest.Status.IN_PROGRESS
        fields.append("status")
    locked.updated_at = moment
    locked.save(update_fields=fields)
    # Last in the transaction: the files are written only once everything else has been.
    attached.store(attachments, locked, comment=comment, uploaded_by=user, moment=moment)
    service_request.status, service_request.updated_at = locked.status, locked.updated_at
    return comment


@transaction.atomic
def reply_as_staff(staff: User, service_request: ServiceRequest, body: str) -> Comment:
    """Add a staff reply (shown to the customer as from the service desk)."""
    if not staff.is_staff:
        raise PermissionError("Only staff reply as staff.")
    moment = now()
    comment = Comment.objects.create(service_request=service_request, author=staff, body=body,
                                     from_staff=True, created_at=moment)
    ServiceRequest.objects.filter(pk=service_request.pk).update(updated_at=moment)
    service_request.updated_at = moment
    return comment
