from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render


def start(request: HttpRequest) -> HttpResponse:
    return render(request, "signin/start.html", {})


def check_inbox(request: HttpRequest) -> HttpResponse:
    raise Http404


def open_link(request: HttpRequest, token: str) -> HttpResponse:
    raise Http404
