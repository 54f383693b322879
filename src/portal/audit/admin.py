"""Staff view of the audit trail: searchable, filterable, and read-only for everyone.

An audit trail that staff can edit or delete from the admin is not evidence of anything, so
no one, superusers included, gets add, change or delete here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from portal.audit.models import AuthEvent

EVENT_FIELDS = ("created_at", "tag", "outcome", "email", "user", "organization", "actor_email",
                "ip", "user_agent", "reason", "detail")


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "tag", "outcome", "email", "organization", "actor_email", "ip",
                    "reason"]
    list_filter = ["tag", "outcome", "organization"]
    date_hierarchy = "created_at"
    search_fields = ["email", "ip", "actor_email"]
    list_select_related = ["organization"]
    show_full_result_count = False  # counting a large table on every page is slow
    fields = EVENT_FIELDS
    readonly_fields = EVENT_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
