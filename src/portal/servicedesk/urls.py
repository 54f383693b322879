from django.urls import path

from portal.servicedesk import views

app_name = "servicedesk"

urlpatterns = [
    path("", views.request_list, name="list"),
    path("new/", views.request_new, name="new"),
    path("<int:number>/", views.request_detail, name="detail"),
    path("<int:number>/comments/", views.request_comment, name="comment"),
    path("<int:number>/attachments/<int:attachment_id>/", views.attachment_download,
         name="attachment"),
]
