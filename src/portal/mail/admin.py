"""Staff view of mail delivery: what was sent to whom, every attempt, and a way to retry.

Everything is read-only: the outbox is a record of what happened. Staff change a message
only through the "retry" action; they cannot edit content (a sign-in email's body is
never stored anyway) or delete the history.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from portal.mail import outbox
from portal.mail.models import DeliveryAttempt, OutboundMessage


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["started_at", "finished_at", "worker", "result", "smtp_code", "reply"]
    readonly_fields = ["started_at", "finished_at", "worker", "result", "smtp_code", "reply"]
    ordering = ["started_at", "id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "to", "kind", "subject", "status", "attempt_count",
                    "next_attempt_at", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["to", "message_id", "subject"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    inlines = [DeliveryAttemptInline]
    actions = ["retry_now"]
    fieldsets = [
        (None, {"fields": ["to", "kind", "subject", "status", "last_error", "sign_in_request"]}),
        ("Delivery", {"fields": ["created_at", "next_attempt_at", "not_after", "attempt_count",
                                 "max_attempts", "sent_at", "message_id", "claimed_by",
                                 "claimed_until"]}),
        ("Content", {"fields": ["renderer", "payload", "text_body", "html_body"],
                     "classes": ["collapse"],
                     "description": "Late-rendered messages (a renderer is named) keep no "
                                    "body here: it held a secret."}),
    ]
    readonly_fields = ["to", "kind", "subject", "status", "last_error", "sign_in_request",
                       "created_at", "next_attempt_at", "not_after", "attempt_count",
                       "max_attempts", "sent_at", "message_id", "claimed_by", "claimed_until",
                       "renderer", "payload", "text_body", "html_body"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutboundMessage]:
        return super().get_queryset(request).select_related("sign_in_request")

    @admin.display(description="Sign-in request")
    def sign_in_request(self, obj: OutboundMessage) -> str:
        try:
            sign_in = obj.sign_in_request
        except ObjectDoesNotExist:
            return "None"
        try:
            url = reverse("admin:signin_signinrequest_change", args=[sign_in.pk])
        except NoReverseMatch:
            return str(sign_in)
        return format_html('<a href="{}">{}</a>', url, sign_in)

    @admin.action(description="Retry now (failed or expired messages)", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> None:
        selected = list(queryset)
        count = outbox.requeue(selected)
        skipped = len(selected) - count
        if count:
            self.message_user(request, f"{count} message{'s' if count != 1 else ''} queued "
                                       "again; a worker will try within a second or two.",
                              messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} skipped: only failed or expired messages "
                                       "can be retried.", messages.WARNING)
