from django.urls import path

from portal.passkeys import views

app_name = "passkeys"

urlpatterns = [
    path("", views.passkey_list, name="list"),
    path("add/options/", views.add_options, name="add_options"),
    path("add/", views.add, name="add"),
    path("<int:passkey_id>/rename/", views.rename, name="rename"),
    path("<int:passkey_id>/remove/", views.remove, name="remove"),
    path("signin/options/", views.signin_options, name="signin_options"),
    path("signin/", views.signin, name="signin"),
    path("sign-in-again/", views.sign_in_again, name="sign_in_again"),
    path("use/", views.use, name="use"),
    path("offer/dismiss/", views.dismiss_offer, name="dismiss_offer"),
    path("enrol/<str:token>/", views.enrol, name="enrol"),
]
