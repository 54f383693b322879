from django.apps import AppConfig


class HelpcenterConfig(AppConfig):
    name = "portal.helpcenter"
    label = "helpcenter"
    verbose_name = "Help center"
