"""The Members page and its changes: invite, resend, revoke, turn off or on, admin role.

Every change is a POST that needs a recent sign-in; a refusal re-renders the page with the
reason and a 4xx status, having changed nothing. Ids of another organization's people or
invitations answer 404, exactly as ids that do not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from portal.accounts.models import Membership, Organization, User
from portal.orgadmin import invitations, members, words
from portal.orgadmin.access import organization_admin
from portal.orgadmin.errors import InvitationUnknown, MemberUnknown, OrgAdminError
from portal.signin.views.recent import refuse_unless_recent

ACTION = "change your organization's people"


def _admin(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # organization_admin has checked


def _page(request: HttpRequest, organization: Organization, *, status: int = 200,
          error: str = "", invite_email: str = "", invite_role: str = "member",
          ) -> HttpResponse:
    query = members.clean_query(request.GET.get("q"))
    page, rows = members.member_page(organization, query, request.GET.get("page"))
    return render(request, "orgadmin/members.html", {
        "organization": organization, "page": page, "rows": rows, "query": query,
        "invitations": invitations.waiting(organization), "error": error,
        "invite_email": invite_email, "invite_role": invite_role,
        "roles": Membership.Role.choices, "me": request.user}, status=status)


@require_safe
@organization_admin
def member_list(request: HttpRequest, *, organization: Organization) -> HttpResponse:
    return _page(request, organization)


def _change(request: HttpRequest, organization: Organization,
            change: Callable[[], str], **form: Any) -> HttpResponse:
    """Run ``change`` (which returns the success sentence) behind the recent sign-in rule."""
    refusal = refuse_unless_recent(request, action=ACTION,
                                   return_to=reverse("orgadmin:members"))
    if refusal is not None:
        return refusal
    try:
        done = change()
    except (MemberUnknown, InvitationUnknown):
        raise Http404() from None
    except OrgAdminError as error:
        status, sentence = words.message(error)
        return _page(request, organization, status=status, error=sentence, **form)
    messages.success(request, done)
    if members.administered(request.user) is None:
        return redirect("home")  # they just gave up their own admin role
    return redirect("orgadmin:members")


@require_POST
@organization_admin
def invite(request: HttpRequest, *, organization: Organization) -> HttpResponse:
    email = request.POST.get("email", "")[:500]
    role = request.POST.get("role", Membership.Role.MEMBER)

    def run() -> str:
        sent = invitations.invite(request, organization, _admin(request), email=email,
                                  role=role)
        return (f"Invitation sent to {sent.email}. The link works once, until it expires; "
                f"you can resend or withdraw it below.")
    return _change(request, organization, run, invite_email=email, invite_role=role)


@require_POST
@organization_admin
def resend(request: HttpRequest, invitation_id: int, *,
           organization: Organization) -> HttpResponse:
    def run() -> str:
        sent = invitations.resend(request, organization, _admin(request), invitation_id)
        return f"A new invitation is on its way to {sent.email}. The earlier link no longer works."
    return _change(request, organization, run)


@require_POST
@organization_admin
def revoke(request: HttpRequest, invitation_id: int, *,
           organization: Organization) -> HttpResponse:
    def run() -> str:
        gone = invitations.revoke(request, organization, _admin(request), invitation_id)
        return f"The invitation to {gone.email} was withdrawn. Its link no longer works."
    return _change(request, organization, run)


@require_POST
@organization_admin
def disable(request: HttpRequest, user_id: int, *, organization: Organization) -> HttpResponse:
    def run() -> str:
        person = members.disable(request, organization, _admin(request), user_id)
        return (f"{person.get_full_name()}'s account is turned off and every session of "
                f"theirs has ended. We emailed them to say so.")
    return _change(request, organization, run)


@require_POST
@organization_admin
def enable(request: HttpRequest, user_id: int, *, organization: Organization) -> HttpResponse:
    def run() -> str:
        person = members.enable(request, organization, _admin(request), user_id)
        return f"{person.get_full_name()}'s account is turned back on. We emailed them."
    return _change(request, organization, run)


@require_POST
@organization_admin
def set_role(request: HttpRequest, user_id: int, *,
             organization: Organization) -> HttpResponse:
    role = request.POST.get("role", "")

    def run() -> str:
        person = members.set_role(request, organization, _admin(request), user_id, role)
        if person.membership.role == Membership.Role.ADMIN:
            return f"{person.get_full_name()} is now an admin. We emailed them."
        return f"{person.get_full_name()} is now a member without the admin role. We emailed them."
    return _change(request, organization, run)
