"""Staff admin for people, organizations, memberships and their sign-in policy.

The portal has no passwords, so nothing here is built on ``contrib.auth``'s ``UserAdmin``
(its forms are about setting and changing passwords). The site itself (sign-in by the
portal's own pages, no password pages) is ``site.PortalAdminSite``.

Who may change what (docs/portal.md, "Staff admin"): only superusers change staff or
superuser accounts, admin flags, groups and permissions (``services.may_change_account``);
every change of an address, a flag, a membership or a sign-in policy is recorded with the
staff member who made it (``changes``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.db.models import OuterRef, QuerySet, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from portal.accounts import changes
from portal.accounts.models import (
    GoogleWorkspaceDomain,
    Membership,
    MicrosoftTenant,
    Organization,
    OrganizationDomain,
    User,
)
from portal.accounts.services import InvalidEmail, clean_email, may_change_account
from portal.core.moments import format_moment
from portal.core.templatetags.portal_tags import sign_in_method
from portal.signin.models import UserSession

# A DNS name: labels of letters, digits and inner hyphens, at least one dot.
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                        r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")

PROTECTED_TITLE = "Only a superuser can change this account"
PROTECTED_NOTE = ("{account} is a staff or superuser account. Only a superuser can change its "
                  "address, access, memberships or permissions, or delete it.")


def _refuse_protected(request: HttpRequest, account: User) -> HttpResponse:
    return render(request, "core/error.html", {
        "title": PROTECTED_TITLE,
        "message": PROTECTED_NOTE.format(account=account.email) + " Nothing was changed."},
        status=403)


def _with_actor(form_class: Any, request: HttpRequest) -> Any:
    """Return ``form_class`` knowing who submits it (the staff member's rights decide)."""
    return type(form_class.__name__, (form_class,), {"actor": request.user})


# --- Auditing and guarding, shared by every admin below -----------------------------------

class AuditedAdmin(admin.ModelAdmin):
    """Record each add, change and delete in the audit trail, with the staff member.

    A snapshot is taken from the database before the save and from the saved row (with
    its many-to-many fields and inlines) after, so the row says before → after.
    """

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        form.audit_before = changes.stored_snapshot(obj) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any,
                     change: bool) -> None:
        super().save_related(request, form, formsets, change)
        changes.record_change(request, form.instance, getattr(form, "audit_before", None))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any,
                     change: bool) -> None:
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        stored = Membership.objects.select_related("user", "organization").filter(
            pk__in=[f.instance.pk for f in formset.initial_forms if f.instance.pk])
        before = {m.pk: changes.snapshot(m) for m in stored}
        for deleted in formset.deleted_forms:
            if deleted.instance.pk in before:
                changes.record_removal(request, deleted.instance, before[deleted.instance.pk])
        super().save_formset(request, form, formset, change)
        for added in formset.new_objects:
            changes.record_change(request, added, None)
        for changed, _fields in formset.changed_objects:
            changes.record_change(request, changed, before.get(changed.pk))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        changes.record_removal(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            changes.record_removal(request, obj)
        super().delete_queryset(request, queryset)


class GuardedAccountAdmin(AuditedAdmin):
    """Pages that change a person's account: staff and superuser accounts are superusers' only.

    Such a page still opens read-only for staff who may view it, with a note saying why;
    a submitted change or a deletion is refused with a plain 403 page, before anything runs.
    """

    def account_of(self, obj: Any) -> User:
        raise NotImplementedError

    def _may_change(self, request: HttpRequest, obj: Any) -> bool:
        return obj is None or may_change_account(request.user, self.account_of(obj))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._may_change(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_change(request, obj)

    def _protected(self, request: HttpRequest, object_id: str | None) -> Any:
        obj = self.get_object(request, unquote(object_id)) if object_id else None
        return obj if obj is not None and not self._may_change(request, obj) else None

    def changeform_view(self, request: HttpRequest, object_id: str | None = None,
                        form_url: str = "", extra_context: dict[str, Any] | None = None
                        ) -> HttpResponse:
        protected = self._protected(request, object_id)
        if protected is not None:
            if request.method == "POST":
                return _refuse_protected(request, self.account_of(protected))
            messages.warning(request, PROTECTED_NOTE.format(
                account=self.account_of(protected).email))
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request: HttpRequest, object_id: str,
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        protected = self._protected(request, object_id)
        if protected is not None:
            return _refuse_protected(request, self.account_of(protected))
        return super().delete_view(request, object_id, extra_context)


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


# --- Memberships: one organization per person -------------------------------------------

class MembershipForm(forms.ModelForm):
    """A membership; a person already in another organization is a message, not an error page.

    ``actor`` (the staff member submitting) is set by the admin that builds the form.
    """

    actor: Any = None

    class Meta:
        model = Membership
        fields = ["user", "organization", "role"]

    def clean_user(self) -> User:
        person: User = self.cleaned_data["user"]
        if person.pk is None:  # a person being added on this very page belongs nowhere yet
            return person
        if not may_change_account(self.actor, person):
            raise forms.ValidationError(PROTECTED_NOTE.format(account=person.email))
        clash = (Membership.objects.select_related("organization").filter(user=person)
                 .exclude(pk=self.instance.pk).first())
        if clash is not None:
            raise forms.ValidationError(
                f"{person.email} already belongs to {clash.organization.name}. A person "
                f"belongs to one organization: change or remove that membership first.")
        return person


class MembershipFormSet(BaseInlineFormSet):
    """Inline memberships; removing one from a protected account is refused too."""

    actor: Any = None

    def clean(self) -> None:
        super().clean()
        for form in self.deleted_forms:
            person = getattr(form.instance, "user", None)
            if form.instance.pk and person is not None and not may_change_account(
                    self.actor, person):
                raise forms.ValidationError(PROTECTED_NOTE.format(account=person.email))


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipForm
    formset = MembershipFormSet
    extra = 0
    readonly_fields = ["created_at"]

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        # A second row is a message on the form: without validate_max the extra row would
        # reach the database and its one-per-person constraint as an error page.
        kwargs.setdefault("validate_max", True)
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {
            "actor": request.user, "form": _with_actor(formset.form, request)})


# --- People -----------------------------------------------------------------------------

class UserMembershipInline(MembershipInline):
    fk_name = "user"
    fields = ["organization", "role", "created_at"]
    autocomplete_fields = ["organization"]
    max_num = 1
    verbose_name = "organization membership"
    verbose_name_plural = "organization membership (a person belongs to one organization)"


@admin.register(User)
class UserAdmin(GuardedAccountAdmin):
    form = UserAdminForm
    list_display = ["email", "full_name", "organization_name", "is_active", "is_staff",
                    "last_sign_in"]
    list_filter = ["is_active", "is_staff", "membership__organization"]
    search_fields = ["email", "full_name", "membership__organization__name"]
    ordering = ["email"]
    readonly_fields = ["last_sign_in", "date_joined"]
    filter_horizontal = ["groups", "user_permissions"]
    inlines = [UserMembershipInline]
    fieldsets = [
        (None, {"fields": ["email", "full_name"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser"],
                    "description": "Turning a person off (not active) signs them out "
                                   "everywhere at once and stops every sign-in method; "
                                   "turning them back on revives no old session. Staff may "
                                   "use this admin. Only superusers change staff accounts."}),
        ("Sign-in history", {"fields": ["last_sign_in", "date_joined"]}),
        ("Admin permissions", {"fields": ["groups", "user_permissions"],
                               "classes": ["collapse"]}),
    ]

    def account_of(self, obj: Any) -> User:
        return obj

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # The latest "Your sessions" row says when and how the person last signed in.
        latest = UserSession.objects.filter(user=OuterRef("pk")).order_by("-created_at")
        return (super().get_queryset(request).select_related("membership__organization")
                .annotate(last_sign_in_at=Subquery(latest.values("created_at")[:1]),
                          last_sign_in_by=Subquery(latest.values("method")[:1])))

    @admin.display(description="last sign-in", ordering="last_sign_in_at")
    def last_sign_in(self, obj: Any) -> str:
        moment = getattr(obj, "last_sign_in_at", None)
        if moment is None:
            return "never"
        return f"{format_moment(moment)} ({sign_in_method(obj.last_sign_in_by)})"

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Only a superuser hands out staff or superuser status or admin permissions: a
            # staff member allowed to edit people must not be able to raise anyone's rights.
            fields += ["is_staff", "is_superuser", "groups", "user_permissions"]
        return fields

    @admin.display(description="organization", ordering="membership__organization__name")
    def organization_name(self, obj: User) -> str:
        organization = obj.organization  # joined by get_queryset: no query per row
        return organization.name if organization is not None else "—"


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


class OrganizationMemberInline(MembershipInline):
    fk_name = "organization"
    fields = ["user", "role", "created_at"]
    autocomplete_fields = ["user"]
    verbose_name = "member"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Membership]:
        return super().get_queryset(request).select_related("user")


@admin.register(Organization)
class OrganizationAdmin(AuditedAdmin):
    list_display = ["name", "is_active", "allow_email_link", "allow_google", "allow_microsoft",
                    "auto_join", "require_passkeys_for_admins", "created_at"]
    list_filter = ["is_active", "allow_email_link", "allow_google", "allow_microsoft",
                   "auto_join", "require_passkeys_for_admins"]
    search_fields = ["name", "domains__domain"]
    readonly_fields = ["created_at"]
    fieldsets = [
        (None, {"fields": ["name", "is_active", "created_at"],
                "description": "Turning an organization off (not active) signs every member "
                               "out at once and stops every sign-in method for them."}),
        ("Sign-in policy", {
            "fields": ["allow_email_link", "allow_google", "allow_microsoft", "auto_join",
                       "strict_same_browser", "require_passkeys_for_admins"],
            "description": "Which sign-in methods this organization's people may use. "
                           "Auto-join lets anyone with an address at a verified domain sign "
                           "in and become a member: turn it on only for domains the customer "
                           "controls completely. Strict mode keeps email sign-in on the "
                           "browser that asked: a link opened elsewhere can only approve or "
                           "refuse it. Requiring passkeys for admins asks the "
                           "organization's admins to sign in with a passkey."}),
    ]
    inlines = [OrganizationDomainInline, GoogleWorkspaceDomainInline, MicrosoftTenantInline,
               OrganizationMemberInline]


@admin.register(Membership)
class MembershipAdmin(GuardedAccountAdmin):
    form = MembershipForm
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__email", "user__full_name", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]

    def account_of(self, obj: Any) -> User:
        return obj.user

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False,
                 **kwargs: Any) -> Any:
        return _with_actor(super().get_form(request, obj, change, **kwargs), request)


# --- Groups: whoever changes a group's permissions changes their own ----------------------

class PortalGroupAdmin(AuditedAdmin, GroupAdmin):
    """Groups of admin permissions; only superusers add, change or delete them.

    A staff member allowed to change groups could give their own group any permission.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)


def restrict_groups_to_superusers(site: admin.AdminSite | None = None) -> None:
    """Replace ``contrib.auth``'s Group admin (registered at autodiscover) with ours."""
    site = site or admin.site
    if site.is_registered(Group):
        site.unregister(Group)
    site.register(Group, PortalGroupAdmin)
