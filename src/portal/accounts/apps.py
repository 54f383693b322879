from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    name = "portal.accounts"
    label = "accounts"
    default = True


class PortalAdminConfig(admin_apps.AdminConfig):
    """Django's admin app with ``PortalAdminSite`` as its default site.

    Named in INSTALLED_APPS instead of ``django.contrib.admin``; ``@admin.register`` keeps
    working because it registers on the default site.
    """

    default = False  # never picked for "portal.accounts" itself
    default_site = "portal.accounts.site.PortalAdminSite"

    def ready(self) -> None:
        super().ready()  # autodiscover: every app's admin module has registered by now
        from portal.accounts.admin import restrict_groups_to_superusers

        restrict_groups_to_superusers()
