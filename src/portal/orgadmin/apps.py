from django.apps import AppConfig


class OrgAdminConfig(AppConfig):
    name = "portal.orgadmin"
    label = "orgadmin"
    verbose_name = "Organization admin"
