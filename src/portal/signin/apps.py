from typing import Any

from django.apps import AppConfig
from django.utils import timezone


def _last_login_comes_with_finish_sign_in(sender: Any, user: Any, **kwargs: Any) -> None:
    """Stand in for ``django.contrib.auth.models.update_last_login`` without a query."""
    user.last_login = timezone.now()


class SigninConfig(AppConfig):
    name = "portal.signin"
    label = "signin"
    verbose_name = "Sign-in"  # the admin's heading; without it Django shows "SIGNIN"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from portal.accounts.signals import access_revoked
        from portal.mail import renderers
        from portal.signin.flows.link_email import LinkEmail
        from portal.signin.flows.magic_link import RENDERER
        from portal.signin.receivers import end_sessions_on_revocation

        renderers.register(RENDERER, LinkEmail())
        # finish_sign_in writes last_login itself, in the UPDATE it makes anyway. Taking
        # Django's dispatch_uid first (this app is ready before django.contrib.auth) keeps
        # its receiver, a second UPDATE per sign-in, from being connected at all.
        user_logged_in.connect(_last_login_comes_with_finish_sign_in,
                               dispatch_uid="update_last_login")
        access_revoked.connect(end_sessions_on_revocation,
                               dispatch_uid="signin.end_sessions_on_revocation")
