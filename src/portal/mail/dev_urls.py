from django.urls import path

from portal.servicedesk import views

app_name = "devmail"

urlpatterns = [path("", views.request_list, name="inbox")]
