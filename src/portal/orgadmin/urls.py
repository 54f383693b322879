from django.urls import path

from portal.orgadmin import views

app_name = "orgadmin"

urlpatterns = [
    path("", views.index, name="index"),
    path("history/", views.sign_in_history, name="history"),
    path("history/export.csv", views.sign_in_history_export, name="history_export"),
]
