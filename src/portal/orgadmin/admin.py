"""Staff view of organization admins' invitations: who invited whom, and what became of it.

Read-only: an invitation is changed by its organization's admins (resend, withdraw) and by
the invitee (accept), each audited. The seed and the secret's hash are never shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from portal.orgadmin.models import Invitation

INVITATION_FIELDS = ("organization", "email", "role", "invited_by", "created_at", "sent_at",
                     "send_count", "expires_at", "accepted_at", "accepted_by", "revoked_at")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "invited_by", "sent_at", "expires_at",
                    "accepted_at", "revoked_at"]
    list_filter = ["organization", "role"]
    search_fields = ["email"]
    list_select_related = ["organization", "invited_by"]
    fields = INVITATION_FIELDS
    readonly_fields = INVITATION_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
