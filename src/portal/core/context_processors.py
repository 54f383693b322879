from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict[str, object]:
    return {"brand": settings.PORTAL_BRAND, "dev_mail_enabled": bool(settings.PORTAL_DEV_MAIL_DIR)}
