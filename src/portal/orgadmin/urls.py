from django.urls import path

from portal.orgadmin import invitation_views, member_views, policy_views, views

app_name = "orgadmin"

urlpatterns = [
    path("", views.index, name="index"),
    path("members/", member_views.member_list, name="members"),
    path("members/invite/", member_views.invite, name="invite"),
    path("members/<int:user_id>/disable/", member_views.disable, name="disable"),
    path("members/<int:user_id>/enable/", member_views.enable, name="enable"),
    path("members/<int:user_id>/role/", member_views.set_role, name="set_role"),
    path("invitations/<int:invitation_id>/resend/", member_views.resend, name="resend"),
    path("invitations/<int:invitation_id>/revoke/", member_views.revoke, name="revoke"),
    path("policy/", policy_views.sign_in_policy, name="policy"),
    # The invitee's link: public (they have no account yet); the secret is in the path.
    path("invitation/<str:token>/", invitation_views.invitation, name="invitation"),
    path("history/", views.sign_in_history, name="history"),
    path("history/export.csv", views.sign_in_history_export, name="history_export"),
]
