from django.urls import path

from portal.signin.views import magic_link, oidc, sessions

app_name = "signin"

urlpatterns = [
    path("", magic_link.start, name="start"),
    path("check-inbox/", magic_link.check_inbox, name="check_inbox"),
    path("check-inbox/status/", magic_link.check_inbox_status, name="check_inbox_status"),
    path("check-inbox/continue/", magic_link.continue_approved, name="continue_approved"),
    path("code/", magic_link.enter_code, name="code"),
    path("link/<str:token>/", magic_link.open_link, name="link"),
    path("confirm/", magic_link.confirm, name="confirm"),
    path("confirm/approve/", magic_link.confirm_approve, name="confirm_approve"),
    path("confirm/refuse/", magic_link.confirm_refuse, name="confirm_refuse"),
    path("link-problem/", magic_link.link_problem, name="link_problem"),
    path("signout/", sessions.signout, name="signout"),
    path("signed-out/", sessions.signed_out, name="signed_out"),
    path("sessions/", sessions.session_list, name="sessions"),
    path("sessions/<int:session_id>/end/", sessions.end_one, name="end_session"),
    path("sessions/end-others/", sessions.end_others, name="end_other_sessions"),
    path("oidc/<str:provider>/start/", oidc.start, name="oidc_start"),
    path("oidc/<str:provider>/callback/", oidc.callback, name="oidc_callback"),
]
