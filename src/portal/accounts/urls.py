"""A person's own settings: notifications and time zone (``/account/``)."""

from django.urls import URLPattern, path

from portal.accounts import zone_views

app_name = "account"

urlpatterns: list[URLPattern] = [
    path("time-zone/", zone_views.time_zone, name="time_zone"),
]
