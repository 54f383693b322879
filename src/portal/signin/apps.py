from django.apps import AppConfig


class SigninConfig(AppConfig):
    name = "portal.signin"
    label = "signin"
    verbose_name = "Sign-in"  # the admin's heading; without it Django shows "SIGNIN"

    def ready(self) -> None:
        from portal.mail import renderers
        from portal.signin.flows.link_email import LinkEmail
        from portal.signin.flows.magic_link import RENDERER

        renderers.register(RENDERER, LinkEmail())
