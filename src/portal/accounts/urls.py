"""A person's own settings: notifications and time zone (``/account/``)."""

from django.urls import URLPattern, path

from portal.notifications import views as notifications

app_name = "account"

urlpatterns: list[URLPattern] = [
    path("notifications/", notifications.preferences, name="notifications"),
]
