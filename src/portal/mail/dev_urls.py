"""URLs of the development mail pages (``/dev/mail/``); 404 outside development."""

from django.urls import path

from portal.mail import dev_views

app_name = "devmail"

urlpatterns = [
    path("", dev_views.inbox, name="inbox"),
    path("<str:key>/", dev_views.message, name="message"),
]
