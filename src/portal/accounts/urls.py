"""A person's own settings: notifications and time zone (``/account/``)."""

from django.urls import URLPattern

app_name = "account"

urlpatterns: list[URLPattern] = []
