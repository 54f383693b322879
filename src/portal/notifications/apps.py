from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "portal.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from portal.notifications.browsers import notice_new_browser
        from portal.signin.signals import signed_in

        signed_in.connect(notice_new_browser, dispatch_uid="notifications.new_browser")
