from django.urls import path

from portal.servicedesk import views

app_name = "helpcenter"

urlpatterns = [path("", views.request_list, name="index")]
