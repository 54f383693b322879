"""Pages of the service desk. Each reads the request, calls a service, renders the result."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal.accounts.models import User
from portal.helpcenter import articles
from portal.servicedesk import attachments, services
from portal.servicedesk.downloads import attachment_response
from portal.servicedesk.forms import CommentForm, ServiceRequestForm
from portal.servicedesk.models import ServiceRequest

PAGE_SIZE = 25
HOME_OPEN_LIMIT = 10
HOME_RECENT_CLOSED = 5
FILTERS = {"open": "Open", "closed": "Closed", "all": "All"}
SIGN_IN_ARTICLES = ("signing-in-with-a-magic-link", "the-email-never-arrived",
                    "signing-out-and-your-sessions")


def _user(request: HttpRequest) -> User:
    # login_required has run: the user is a real, active User.
    return request.user  # type: ignore[return-value]


def _no_organization(request: HttpRequest, status: int = 200) -> HttpResponse:
    return render(request, "servicedesk/no_organization.html", status=status)


@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    org = services.organization_for(user)
    help_links = [a for slug in SIGN_IN_ARTICLES if (a := articles.find(slug)) is not None]
    if org is None:
        return render(request, "servicedesk/no_organization.html", {"help_links": help_links})
    shown = services.overview(user, open_limit=HOME_OPEN_LIMIT,
                              closed_limit=HOME_RECENT_CLOSED)
    return render(request, "servicedesk/home.html", {
        "organization": org,
        "open_requests": shown.open_requests,
        "open_count": shown.open_count,
        "recent_closed": shown.recent_closed,
        "help_links": help_links,
    })


@login_required
@require_safe
def request_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    org = services.organization_for(user)
    if org is None:
        return _no_organization(request)
    # An unknown filter value falls back to the default view rather than an error page:
    # it can only come from an edited address, and showing open requests is harmless.
    chosen = request.GET.get("status", "open")
    if chosen not in FILTERS:
        chosen = "open"
    visible = services.requests_for(user)
    if chosen == "open":
        visible = services.open_requests(visible)
    elif chosen == "closed":
        visible = services.closed_requests(visible)
    page = Paginator(visible, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "servicedesk/list.html", {
        "organization": org, "page": page, "chosen": chosen, "filters": FILTERS})


def _detail(request: HttpRequest, service_request: ServiceRequest, form: CommentForm,
            status: int = 200) -> HttpResponse:
    files = attachments.for_request(service_request)
    comments = [(comment, files.get(comment.pk, []))
                for comment in service_request.comments.select_related("author")]
    return render(request, "servicedesk/detail.html", {
        "sr": service_request, "comments": comments, "form": form,
        "filed_with": files.get(None, []),
        "can_comment": service_request.status != ServiceRequest.Status.CLOSED,
    }, status=status)


def _find(request: HttpRequest, number: int) -> ServiceRequest:
    try:
        return services.get_request(_user(request), number)
    except services.RequestNotFound:
        # Another organization's request answers exactly like one that does not exist.
        raise Http404("No such request") from None


@login_required
@require_safe
def request_detail(request: HttpRequest, number: int) -> HttpResponse:
    return _detail(request, _find(request, number), CommentForm())


@login_required
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if services.organization_for(user) is None:
        return _no_organization(request, status=403 if request.method == "POST" else 200)
    if request.method != "POST":
        return render(request, "servicedesk/new.html", {"form": ServiceRequestForm()})
    form = ServiceRequestForm(request.POST, request.FILES)
    if not form.is_valid():
        # 400 with the form as typed: nothing is lost, every problem is named by its field
        # (a refused file by its name; the page asks to choose the files again).
        return render(request, "servicedesk/new.html", {"form": form}, status=400)
    filed = services.file_request(user, **form.cleaned_data)
    messages.success(request, f"{filed.reference} is filed. We will reply here, "
                              "and you can add details at any time.")
    return redirect(filed)


@login_required
@require_POST
def request_comment(request: HttpRequest, number: int) -> HttpResponse:
    service_request = _find(request, number)
    form = CommentForm(request.POST, request.FILES)
    if not form.is_valid():
        return _detail(request, service_request, form, status=400)
    try:
        services.add_comment(_user(request), service_request, form.cleaned_data["body"],
                             form.cleaned_data["attachments"])
    except services.RequestNotFound:
        raise Http404("No such request") from None  # membership ended a moment ago
    except services.RequestClosed:
        form.add_error(None, f"{service_request.reference} is closed, so it takes no more "
                             "comments. File a new request and mention "
                             f"{service_request.reference} in it.")
        return _detail(request, service_request, form, status=409)
    messages.success(request, "Your comment is added.")
    return redirect(f"{service_request.get_absolute_url()}#comments")


@login_required
@require_safe
def attachment_download(request: HttpRequest, number: int,
                        attachment_id: int) -> HttpResponseBase:
    try:
        attachment = services.attachment_for(_user(request), number, attachment_id)
    except services.AttachmentNotFound:
        # Another organization's file answers exactly like one that does not exist.
        raise Http404("No such attachment") from None
    return attachment_response(attachment)
