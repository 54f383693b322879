"""Staff admin for people, organizations and their sign-in policy.

The portal has no passwords, so nothing here is built on ``contrib.auth``'s ``UserAdmin``
(its forms are about setting and changing passwords). The admin's own login and
password-change pages are replaced: staff sign in the way everyone does.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from portal.accounts.models import (
    GoogleWorkspaceDomain,
    Membership,
    MicrosoftTenant,
    Organization,
    OrganizationDomain,
    User,
)
from portal.accounts.services import InvalidEmail, clean_email
from portal.core.http import safe_next

# A DNS name: labels of letters, digits and inner hyphens, at least one dot.
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                        r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")


# --- Signing in to the admin ------------------------------------------------------------

def admin_login(request: HttpRequest, extra_context: dict[str, Any] | None = None
                ) -> HttpResponse:
    """Send people to the portal's own sign-in page; there is no admin password form.

    A signed-in person who is not staff gets a plain "staff only" page instead of another
    trip to the sign-in page (which would send them straight back here, in a loop).
    """
    if request.user.is_authenticated:
        if request.user.is_staff and request.user.is_active:
            return redirect(safe_next(request.GET.get("next"), reverse("admin:index")))
        return render(request, "core/error.html", {
            "title": "This area is for staff only",
            "message": "The staff admin is for Cloud Sentry staff. Your service requests are "
                       "on the portal home page."}, status=403)
    # The destination is re-checked here and again by the sign-in flow: only same-site paths.
    destination = safe_next(request.GET.get("next"), reverse("admin:index"))
    return redirect(f"{reverse('signin:start')}?{urlencode({'next': destination})}")


def admin_logout(request: HttpRequest, extra_context: dict[str, Any] | None = None
                 ) -> HttpResponse:
    """Use the portal's sign-out, which also ends the session row and writes the audit."""
    return redirect("signin:signout")


def no_password_change(request: HttpRequest, extra_context: dict[str, Any] | None = None
                       ) -> HttpResponse:
    """There are no passwords to change; a password set here could only mislead."""
    raise Http404("There are no passwords in this portal.")


admin.site.login = admin_login  # type: ignore[method-assign]
admin.site.logout = admin_logout  # type: ignore[method-assign,assignment]
admin.site.password_change = no_password_change  # type: ignore[method-assign,assignment]
admin.site.password_change_done = no_password_change  # type: ignore[method-assign,assignment]


# --- Forms that normalize before uniqueness is checked ----------------------------------

class UserAdminForm(forms.ModelForm):
    """Every field of a person except a password; the address is checked like at sign-in."""

    class Meta:
        model = User
        fields = ["email", "full_name", "is_active", "is_staff", "is_superuser", "groups",
                  "user_permissions"]

    def clean_email(self) -> str:
        try:
            address = clean_email(self.cleaned_data.get("email", ""))
        except InvalidEmail as exc:
            raise forms.ValidationError(str(exc)) from None
        # Stored addresses are lower-case and unique ignoring case; check that way, so a
        # duplicate is a message on the form rather than a database error.
        clash = User.objects.filter(email__iexact=address)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("Someone already uses this email address.")
        return address


class DomainForm(forms.ModelForm):
    """A domain, lower-cased and checked to be a DNS name before its uniqueness is checked."""

    def clean_domain(self) -> str:
        domain = (self.cleaned_data.get("domain") or "").strip().lower().rstrip(".")
        if not _DOMAIN_RE.match(domain):
            raise forms.ValidationError("Enter a domain name like northwind.example, "
                                        "without @ or https://.")
        model = self._meta.model
        clash = model.objects.filter(domain=domain)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("Another organization already has this domain.")
        return domain


class OrganizationDomainForm(DomainForm):
    class Meta:
        model = OrganizationDomain
        fields = ["domain", "verified"]


class GoogleWorkspaceDomainForm(DomainForm):
    class Meta:
        model = GoogleWorkspaceDomain
        fields = ["domain"]


class MicrosoftTenantForm(forms.ModelForm):
    class Meta:
        model = MicrosoftTenant
        fields = ["tenant_id"]

    def clean_tenant_id(self) -> str:
        raw = (self.cleaned_data.get("tenant_id") or "").strip()
        # Tenant ids are GUIDs. Only an exact id is trusted: a name or a domain here could
        # match a tenant anyone can create (the nOAuth class of account takeover).
        try:
            tenant = str(uuid.UUID(raw))
        except ValueError:
            raise forms.ValidationError(
                "Enter the directory (tenant) ID from Microsoft Entra, a GUID like "
                "72f988bf-86f1-41af-91ab-2d7cd011db47.") from None
        if raw.lower() != tenant:
            raise forms.ValidationError("Enter the tenant ID in its usual form: 32 hex digits "
                                        "in groups of 8-4-4-4-12, with hyphens.")
        clash = MicrosoftTenant.objects.filter(tenant_id=tenant)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("Another organization already has this tenant.")
        return tenant


# --- People -----------------------------------------------------------------------------

class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    fields = ["organization", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["organization"]
    verbose_name = "organization membership"


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    form = UserAdminForm
    list_display = ["email", "full_name", "organization_name", "is_active", "is_staff",
                    "last_login", "last_sign_in_method"]
    list_filter = ["is_active", "is_staff", "last_sign_in_method", "memberships__organization"]
    search_fields = ["email", "full_name", "memberships__organization__name"]
    ordering = ["email"]
    readonly_fields = ["last_login", "last_sign_in_method", "date_joined"]
    filter_horizontal = ["groups", "user_permissions"]
    inlines = [UserMembershipInline]
    fieldsets = [
        (None, {"fields": ["email", "full_name"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser"],
                    "description": "Turning a person off (not active) stops every sign-in "
                                   "method at once. Staff may use this admin."}),
        ("Sign-in history", {"fields": ["last_login", "last_sign_in_method", "date_joined"]}),
        ("Admin permissions", {"fields": ["groups", "user_permissions"],
                               "classes": ["collapse"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("memberships__organization")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Only a superuser hands out superuser status or admin permissions: a staff
            # member allowed to edit people must not be able to raise their own rights.
            fields += ["is_staff", "is_superuser", "groups", "user_permissions"]
        return fields

    @admin.display(description="organization")
    def organization_name(self, obj: User) -> str:
        # Read from the prefetched memberships: one query for the whole page.
        memberships = list(obj.memberships.all())
        return ", ".join(m.organization.name for m in memberships) or "—"


# --- Organizations ----------------------------------------------------------------------

class OrganizationDomainInline(admin.TabularInline):
    model = OrganizationDomain
    form = OrganizationDomainForm
    extra = 0
    verbose_name = "email domain"
    verbose_name_plural = "email domains (only verified ones count for auto-join)"


class GoogleWorkspaceDomainInline(admin.TabularInline):
    model = GoogleWorkspaceDomain
    form = GoogleWorkspaceDomainForm
    extra = 0
    verbose_name = "Google Workspace domain"
    verbose_name_plural = "Google Workspace domains (the ID token's hd claim must be one)"


class MicrosoftTenantInline(admin.TabularInline):
    model = MicrosoftTenant
    form = MicrosoftTenantForm
    extra = 0
    verbose_name = "Microsoft tenant"
    verbose_name_plural = "Microsoft tenants (only these directories may sign in)"


class OrganizationMemberInline(admin.TabularInline):
    model = Membership
    fk_name = "organization"
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    autocomplete_fields = ["user"]
    verbose_name = "member"


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "allow_email_link", "allow_google", "allow_microsoft",
                    "auto_join", "created_at"]
    list_filter = ["is_active", "allow_email_link", "allow_google", "allow_microsoft",
                   "auto_join"]
    search_fields = ["name", "domains__domain"]
    readonly_fields = ["created_at"]
    fieldsets = [
        (None, {"fields": ["name", "is_active", "created_at"]}),
        ("Sign-in policy", {
            "fields": ["allow_email_link", "allow_google", "allow_microsoft", "auto_join",
                       "strict_same_browser"],
            "description": "Which sign-in methods this organization's people may use. "
                           "Auto-join lets anyone with an address at a verified domain sign "
                           "in and become a member: turn it on only for domains the customer "
                           "controls completely. Strict mode keeps email sign-in on the "
                           "browser that asked: a link opened elsewhere can only approve or "
                           "refuse it."}),
    ]
    inlines = [OrganizationDomainInline, GoogleWorkspaceDomainInline, MicrosoftTenantInline,
               OrganizationMemberInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__email", "user__full_name", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]
