"""URLs of the development mail pages (``/dev/mail/``); 404 outside development."""

from django.urls import path

from portal.devtools import views

app_name = "devmail"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("<str:key>/", views.message, name="message"),
]
