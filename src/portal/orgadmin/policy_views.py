"""The Sign-in policy page: which ways in the organization allows, and its defaults."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from portal.accounts.models import Organization, User
from portal.orgadmin import policy, words
from portal.orgadmin.access import organization_admin
from portal.orgadmin.errors import OrgAdminError
from portal.signin.oidc.providers import configured_providers
from portal.signin.views.recent import refuse_unless_recent


def _page(request: HttpRequest, organization: Organization, values: dict[str, Any], *,
          status: int = 200, error: str = "", own_way: str = "") -> HttpResponse:
    return render(request, "orgadmin/policy.html", {
        "organization": organization, "values": values, "error": error,
        "own_way": own_way, "zones": policy.zone_names(),
        "configured": {p.name for p in configured_providers()},
        "domains": organization.domains.order_by("domain"),
    }, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
@organization_admin
def sign_in_policy(request: HttpRequest, *, organization: Organization) -> HttpResponse:
    if request.method != "POST":
        return _page(request, organization, policy.current_policy(organization))
    refusal = refuse_unless_recent(request, action="change your organization's sign-in policy",
                                   return_to=reverse("orgadmin:policy"))
    if refusal is not None:
        return refusal
    submitted: dict[str, Any] = {**policy.current_policy(organization)}
    try:
        submitted.update(policy.read_policy(request.POST))
        policy.check_policy(submitted)
        own_way = policy.turns_off_own_way(request, organization, submitted)
        if own_way and request.POST.get("confirm_own_way") != "yes":
            # Nothing saved: the admin sees what it means and confirms, or changes it.
            return _page(request, organization, submitted, status=409, own_way=own_way)
        admin: User = request.user  # type: ignore[assignment]
        changes = policy.change_policy(request, organization, admin, submitted)
    except OrgAdminError as error:
        status, sentence = words.message(error)
        return _page(request, organization, submitted, status=status, error=sentence)
    messages.success(request, "Your sign-in policy is saved. It applies from each member's "
                     "next sign-in." if changes else "Nothing changed.")
    return redirect("orgadmin:policy")
