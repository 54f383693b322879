"""The invitee's page: GET shows one button and changes nothing; its POST accepts."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from portal.orgadmin import invitations, words
from portal.orgadmin.errors import InvitationProblem
from portal.signin.oidc.providers import configured_providers


def _private(response: HttpResponse) -> HttpResponse:
    # The secret is in this page's address: never let it leak to another site.
    response["Referrer-Policy"] = "no-referrer"
    return response


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if request.method != "POST":
            found = invitations.find(token)
            return _private(render(request, "orgadmin/invitation.html", {
                "invitation": found, "organization": found.organization}))
        accepted = invitations.accept(request, token)
    except InvitationProblem as problem:
        page = words.invitation_page(problem)
        return _private(render(request, "orgadmin/invitation_problem.html", {
            "title": page.title, "message": page.message}, status=page.status))
    if accepted.signed_in:
        messages.success(request, f"Welcome to {accepted.organization.name}. You are signed in.")
        return _private(redirect("home"))
    organization = accepted.organization
    return _private(render(request, "orgadmin/invitation_joined.html", {
        "organization": organization, "email": accepted.user.email,
        "providers": configured_providers(organization),
        "email_allowed": organization.allows("email")}))
