from django.apps import AppConfig


class SigninConfig(AppConfig):
    name = "portal.signin"
    label = "signin"

    def ready(self) -> None:
        from portal.mail import renderers
        from portal.signin.flows.magic_link import RENDERER
        from portal.signin.link_email import LinkEmail

        renderers.register(RENDERER, LinkEmail())
