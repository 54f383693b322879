from django.apps import apps
from django.contrib import admin
from django.urls import include, path

from portal.core import views as core_views
from portal.metrics import views as metrics_views
from portal.servicedesk import views as servicedesk_views

urlpatterns = [
    path("", servicedesk_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("metrics", metrics_views.metrics, name="metrics"),
    path("signin/", include("portal.signin.urls")),
    path("passkeys/", include("portal.passkeys.urls")),
    path("requests/", include("portal.servicedesk.urls")),
    path("help/", include("portal.helpcenter.urls")),
    path("organization/", include("portal.orgadmin.urls")),
    path("account/", include("portal.accounts.urls")),
    path("admin/", admin.site.urls),
]
# Development only: settings install portal.devtools only when PORTAL_DEBUG is on.
if apps.is_installed("portal.devtools"):
    urlpatterns.append(path("dev/mail/", include("portal.devtools.urls")))

handler400 = "portal.core.views.bad_request"
handler404 = "portal.core.views.page_not_found"
handler500 = "portal.core.views.server_error"
