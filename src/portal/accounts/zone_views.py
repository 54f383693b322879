"""The "Time zone" page of a person's own settings (``/account/time-zone/``)."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portal.accounts import zones
from portal.accounts.models import User


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def time_zone(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    form = zones.TimeZoneForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        zones.choose_time_zone(user, form.cleaned_data["time_zone"])
        chosen = zones.effective_zone_name(user)
        whose = "your organization's" if user.organization else "the portal's"
        messages.success(request, f"Times are now shown in {chosen}." if user.time_zone
                         else f"Times now follow {whose} default, {chosen}.")
        return redirect("account:time_zone")
    return render(request, "accounts/time_zone.html", {
        "form": form, "own_zone": user.time_zone,
        "current_zone": zones.effective_zone_name(user),
        "default_zone": zones.default_zone_name(user),
    }, status=400 if form.errors else 200)
