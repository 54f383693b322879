"""Sign out, and the "Your sessions" page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.signin import sessions
from portal.signin.views.recent import recent_sign_in_required, refuse_unless_recent

OTHER_SESSIONS = "sign out other sessions"


@never_cache
def signout(request: HttpRequest) -> HttpResponse:
    """GET shows a sign-out button (a link must not sign anyone out); POST signs out."""
    if request.method == "POST":
        sessions.end_session(request)
        return redirect("signin:signed_out")
    if not request.user.is_authenticated:
        return redirect("signin:start")
    return render(request, "signin/signout.html")


def signed_out(request: HttpRequest) -> HttpResponse:
    return render(request, "signin/signed_out.html")


@never_cache
@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    current = request.session.session_key
    rows = sessions.active_sessions(request.user)  # type: ignore[arg-type]
    rows.sort(key=lambda row: row.session_key != current)  # this browser first
    return render(request, "signin/sessions.html", {"sessions": rows, "current_key": current})


@login_required
@require_POST
def end_one(request: HttpRequest, session_id: int) -> HttpResponse:
    if sessions.is_current(request, session_id):
        # "Sign out" on this browser's own row is a sign-out, done the one proper way.
        sessions.end_session(request)
        return redirect("signin:signed_out")
    # Checked after the sign-out above: signing this browser out must always work.
    if refusal := refuse_unless_recent(request, action=OTHER_SESSIONS,
                                       return_to=reverse("signin:sessions")):
        return refusal
    if sessions.end_other_session(request.user, session_id,  # type: ignore[arg-type]
                                  keep_key=request.session.session_key):
        messages.success(request, "That session has been signed out.")
    else:
        messages.info(request, "That session had already ended.")
    return redirect("signin:sessions")


@login_required
@require_POST
@recent_sign_in_required(action=OTHER_SESSIONS, return_to="signin:sessions")
def end_others(request: HttpRequest) -> HttpResponse:
    count = sessions.end_other_sessions(request, request.user)  # type: ignore[arg-type]
    messages.success(request, f"Signed out of {count} other session{'s' if count != 1 else ''}."
                     if count else "There were no other sessions to sign out.")
    return redirect("signin:sessions")
