from django.apps import AppConfig


class OrgAdminConfig(AppConfig):
    name = "portal.orgadmin"
    label = "orgadmin"
    verbose_name = "Organization admin"

    def ready(self) -> None:
        from portal.mail import renderers
        from portal.orgadmin.invitation_email import InvitationEmail
        from portal.orgadmin.invitations import RENDERER

        renderers.register(RENDERER, InvitationEmail())
