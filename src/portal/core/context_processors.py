from django.conf import settings
from django.http import HttpRequest

from portal.core.security_headers import nonce_of


def portal(request: HttpRequest) -> dict[str, object]:
    """Give every page the brand, the dev-mail switch and this response's CSP nonce.

    ``csp_nonce`` goes on every ``<script>`` element of the portal's templates
    (``nonce="{{ csp_nonce }}"``); the policy also allows the portal's own script files.
    """
    return {"brand": settings.PORTAL_BRAND, "dev_mail_enabled": bool(settings.PORTAL_DEV_MAIL_DIR),
            "csp_nonce": nonce_of(request)}
