from django.urls import path

from portal.servicedesk import views

app_name = "servicedesk"

urlpatterns = [
    path("", views.request_list, name="list"),
    path("<int:number>/", views.request_list, name="detail"),
]
