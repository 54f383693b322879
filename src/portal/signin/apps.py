
from django.apps import AppConfig


class SigninConfig(AppConfig):
    name = "portal.signin"
    label = "signin"
    verbose_name = "Sign-in"  # the admin's heading; without it Django shows "SIGNIN"

    def ready(self) -> None:
        from portal.accounts.signals import access_revoked
        from portal.mail import renderers
        from portal.signin.flows.link_email import LinkEmail
        from portal.signin.flows.magic_link import RENDERER
        from portal.signin.receivers import end_sessions_on_revocation

        renderers.register(RENDERER, LinkEmail())
        access_revoked.connect(end_sessions_on_revocation,
                               dispatch_uid="signin.end_sessions_on_revocation")
