from django.urls import path

from portal.orgadmin import views

app_name = "orgadmin"

urlpatterns = [
    path("", views.index, name="index"),
]
