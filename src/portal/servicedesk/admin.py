"""Staff admin for service requests: change the status, reply as the service desk.

Attachments are shown read-only on the request; staff download them through this admin
(``attachment_download``), so the admin's own rule (an active staff member with a passkey
session, ``PortalAdminSite.has_permission``) decides, as for everything else here.
Each save that replies or changes the status emails the customers who follow the request
(``portal.notifications.requests.announce_staff_update``, in the admin's transaction).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponseBase
from django.template.defaultfilters import filesizeformat
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from portal.accounts.models import User
from portal.core.clock import now
from portal.notifications.requests import announce_staff_update
from portal.servicedesk import services
from portal.servicedesk.downloads import attachment_response
from portal.servicedesk.forms import COMMENT_MAX
from portal.servicedesk.models import Attachment, Comment, ServiceRequest


class ServiceRequestAdminForm(forms.ModelForm):
    reply = forms.CharField(
        label="Reply to the customer", required=False, max_length=COMMENT_MAX,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
        help_text="Shown on the request as from the service desk, under your name. "
                  "Leave empty to only change the status or priority.")

    class Meta:
        model = ServiceRequest
        fields = ["organization", "title", "description", "status", "priority"]

COMMENT_FIELDS = ("created_at", "author", "from_staff", "body")


class CommentInline(admin.TabularInline):
    """The conversation so far. Read-only: nobody rewrites what a customer said."""

    model = Comment
    extra = 0
    fields = COMMENT_FIELDS
    readonly_fields = COMMENT_FIELDS
    can_delete = False
    verbose_name_plural = "conversation"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Comment]:
        return super().get_queryset(request).select_related("author")


ATTACHMENT_FIELDS = ("download", "human_size", "content_type", "uploaded_by", "comment",
                     "created_at")


class AttachmentInline(admin.TabularInline):
    """Files customers attached. Read-only: what a customer sent stays as they sent it."""

    model = Attachment
    extra = 0
    fields = ATTACHMENT_FIELDS
    readonly_fields = ATTACHMENT_FIELDS
    can_delete = False
    verbose_name_plural = "attachments"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Attachment]:
        return super().get_queryset(request).select_related("uploaded_by", "comment")

    @admin.display(description="file")
    def download(self, obj: Attachment) -> str:
        url = reverse("admin:servicedesk_attachment_download",
                      args=[obj.service_request_id, obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.name)

    @admin.display(description="size")
    def human_size(self, obj: Attachment) -> str:
        return filesizeformat(obj.size)


@admin.register(ServiceRequest)
class ServiceRequestAdmin(admin.ModelAdmin):
    form = ServiceRequestAdminForm
    list_display = ["reference", "title", "organization", "status", "priority", "updated_at"]
    list_filter = ["status", "priority", "organization"]
    search_fields = ["title", "=number", "organization__name", "created_by__email"]
    list_select_related = ["organization"]
    readonly_fields = ["reference", "created_by", "created_at", "updated_at"]
    inlines = [CommentInline, AttachmentInline]
    date_hierarchy = "created_at"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [(None, {"fields": ["organization", "title", "description", "priority",
                                       "status", "reply"]})]
        return [
            (None, {"fields": ["reference", "organization", "title", "description",
                               "created_by", "created_at", "updated_at"]}),
            ("Handling", {"fields": ["status", "priority", "reply"]}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Moving a request to another customer would show it to strangers.
            fields.append("organization")
        return fields

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # A request being added has no files yet.
        return [CommentInline] if obj is None else [CommentInline, AttachmentInline]

    def get_urls(self) -> list[URLPattern]:
        download = path("<int:request_id>/attachments/<int:attachment_id>/",
                        self.admin_site.admin_view(self.attachment_download),
                        name="servicedesk_attachment_download")
        return [download, *super().get_urls()]

    def attachment_download(self, request: HttpRequest, request_id: int,
                            attachment_id: int) -> HttpResponseBase:
        """Serve an attachment to staff who may view this request in the admin."""
        found = Attachment.objects.filter(pk=attachment_id,
                                          service_request_id=request_id).first()
        if found is None or not self.has_view_permission(request, found.service_request):
            raise Http404("No such attachment")
        return attachment_response(found)

    @admin.display(description="number", ordering="number")
    def reference(self, obj: ServiceRequest) -> str:
        return obj.reference

    def save_model(self, request: HttpRequest, obj: ServiceRequest, form: Any,
                   change: bool) -> None:
        staff: User = request.user  # type: ignore[assignment]
        previous_status = (form.initial.get("status")
                           if change and "status" in form.changed_data else None)
        if change:
            if form.changed_data:
                obj.updated_at = now()
            super().save_model(request, obj, form, change)
        else:
            # New requests get their number the same way customers' requests do.
            created = services.create_request(
                obj.organization, title=obj.title, description=obj.description,
                priority=obj.priority, created_by=staff)
            if obj.status != created.status:
                created.status = obj.status
                created.save(update_fields=["status"])
            obj.pk, obj.number = created.pk, created.number
            obj.created_at, obj.updated_at = created.created_at, created.updated_at
            obj.created_by = staff
            obj._state.adding = False
        text = form.cleaned_data.get("reply", "").strip()
        reply = services.reply_as_staff(staff, obj, text) if text else None
        # In the admin's transaction: the change and its emails commit together.
        announce_staff_update(obj, actor=staff, reply=reply, previous_status=previous_status)
