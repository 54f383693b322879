"""The organization admin's pages: the landing page and the sign-in history.

Members and policy have their own modules; the history's rules live in ``history.py``.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from portal.accounts.models import Organization
from portal.core.clock import now
from portal.orgadmin import history
from portal.orgadmin.access import organization_admin


@require_safe
@organization_admin
def index(request: HttpRequest, *, organization: Organization) -> HttpResponse:
    return render(request, "orgadmin/index.html", {"organization": organization})


@require_safe
@organization_admin
def sign_in_history(request: HttpRequest, *, organization: Organization) -> HttpResponse:
    """The organization's sign-in events, filtered by the GET form, 50 a page."""
    found = history.search(organization, request.GET, timezone.get_current_timezone())
    page = Paginator(found.events, history.PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "orgadmin/history.html", {
        "organization": organization, "search": found, "form": found.form, "page": page,
        "rows": [history.row_of(event) for event in page.object_list],
        "export_limit": f"{history.EXPORT_LIMIT:,}",
        "zone_name": timezone.get_current_timezone_name(),
    }, status=200 if found.valid else 400)


@require_safe
@organization_admin
def sign_in_history_export(request: HttpRequest, *,
                           organization: Organization) -> HttpResponseBase:
    """The same rows as the page, as a CSV download (streamed, at most EXPORT_LIMIT)."""
    zone = timezone.get_current_timezone()
    found = history.search(organization, request.GET, zone)
    if not found.valid:
        return sign_in_history(request)
    response = StreamingHttpResponse(history.export_csv(found.events, zone),
                                     content_type="text/csv; charset=utf-8")
    day = timezone.localdate(now(), zone).isoformat()
    response["Content-Disposition"] = f'attachment; filename="sign-in-history-{day}.csv"'
    return response
