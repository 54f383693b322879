"""Staff views of sign-in state: link requests, linked identities, sessions. Read-only."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.signin.models import ExternalIdentity, SignInRequest, UserSession
from portal.signin.sessions import end_other_session


class ReadOnlyAdmin(admin.ModelAdmin):
    """What happened is evidence: staff look, they do not edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(SignInRequest)
class SignInRequestAdmin(ReadOnlyAdmin):
    list_display = ("email", "created_at", "link_status", "decline_reason", "expires_at",
                    "consumed_at", "superseded_at", "revoked_at", "ip")
    list_filter = ("delivery", "decline_reason")
    search_fields = ("email", "ip")
    date_hierarchy = "created_at"
    # token_hash, binding_hash, the code's HMAC and the approval number are left out: they
    # are useless to staff and need not travel.
    exclude = ("token_hash", "binding_hash", "code_hmac", "approval_number")
    readonly_fields = ("email", "created_at", "expires_at", "link_status", "delivery",
                       "decline_reason",
                       "next_url", "ip", "user_agent", "sent_at", "opened_at", "consumed_at",
                       "consumed_ip", "consumed_user_agent", "code_attempts",
                       "approval_attempts", "approved_at", "approved_ip", "approved_user_agent",
                       "refused_at", "refusal", "superseded_at", "revoked_at",
                       "user", "message")

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="status")
    def link_status(self, obj: SignInRequest) -> str:
        # Computed, never stored: "Sent" on a link that has since expired would mislead.
        return obj.status


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(ReadOnlyAdmin):
    list_display = ("user", "provider", "issuer", "subject", "created_at", "last_used_at")
    list_filter = ("provider",)
    search_fields = ("user__email", "subject", "email_at_link")
    # Staff may unlink an identity (delete) when a person leaves a tenant.


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "method", "ip", "created_at", "last_seen_at", "ended_at")
    list_filter = ("method",)
    search_fields = ("user__email", "ip")
    actions = ["end_sessions"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Deleting the row would leave the browser signed in; "End" deletes the session.
        return False

    @admin.action(description="Sign out the selected sessions")
    def end_sessions(self, request: HttpRequest, queryset: QuerySet[UserSession]) -> None:
        ended = sum(end_other_session(row.user, row.pk) for row in queryset)
        self.message_user(request, f"Signed out {ended} session(s).")
