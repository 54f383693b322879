"""The organization admin's landing page; members, policy and history have their modules."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal.accounts.models import Organization
from portal.orgadmin.access import organization_admin


@require_safe
@organization_admin
def index(request: HttpRequest, *, organization: Organization) -> HttpResponse:
    return render(request, "orgadmin/index.html", {"organization": organization})
