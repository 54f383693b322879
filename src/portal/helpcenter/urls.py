from django.urls import path

from portal.helpcenter import views

app_name = "helpcenter"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/", views.article, name="article"),
]
