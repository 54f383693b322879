from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "servicedesk/home.html", {})


@login_required
def request_list(request: HttpRequest) -> HttpResponse:
    raise Http404
