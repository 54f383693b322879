from django.apps import AppConfig


class PasskeysConfig(AppConfig):
    name = "portal.passkeys"
    label = "passkeys"
    default_auto_field = "django.db.models.BigAutoField"
