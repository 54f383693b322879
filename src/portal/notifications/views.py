"""The Notifications page (``/account/notifications/``): a person's email choices.

One personal choice lives here, which service request updates to email
(``User.request_updates``). The new-sign-in notice is explained, not offered: it is the
organization's setting (``Organization.new_sign_in_notices``), because a security notice
a person could turn off is one an intruder could turn off first.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from portal.accounts.models import User
from portal.notifications.forms import CHOICE_HINTS, PreferencesForm
from portal.notifications.services import set_request_updates


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            set_request_updates(user, form.cleaned_data["request_updates"])
            messages.success(request, "Saved. Your email choices are updated.")
            return redirect("account:notifications")
        status = 400
    else:
        form = PreferencesForm(initial={"request_updates": user.request_updates})
        status = 200
    selected = form["request_updates"].value()
    options = [{"value": value, "label": label, "hint": CHOICE_HINTS[value],
                "checked": value == selected}
               for value, label in User.RequestUpdates.choices]
    organization = user.organization
    return render(request, "notifications/preferences.html", {
        "form": form, "options": options, "organization": organization,
        "sign_in_notices": organization is None or organization.new_sign_in_notices,
    }, status=status)
