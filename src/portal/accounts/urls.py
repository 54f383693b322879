"""A person's own settings: notifications and time zone (``/account/``)."""

from django.urls import URLPattern, path

from portal.accounts import zone_views
from portal.notifications import views as notifications

app_name = "account"

urlpatterns: list[URLPattern] = [
    path("notifications/", notifications.preferences, name="notifications"),
    path("time-zone/", zone_views.time_zone, name="time_zone"),
]
