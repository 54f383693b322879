"""People, the organizations they belong to, and each organization's sign-in policy."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


def normalize_email(address: str) -> str:
    """Return the canonical form used for storage and lookup: trimmed and lower-case."""
    return address.strip().lower()


def domain_of(address: str) -> str:
    return normalize_email(address).rpartition("@")[2]


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, **fields: Any) -> User:
        user = self.model(email=normalize_email(email), **fields)
        # Nobody signs in with a password here: an unusable one closes that door for good.
        user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, **fields)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email=normalize_email(username or ""))


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. The email address is the identifier; there is no password."""

    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive people cannot sign in by any method.")
    is_staff = models.BooleanField(
        default=False, help_text="Cloud Sentry staff: may use the admin.")
    date_joined = models.DateTimeField(default=timezone.now)
    last_sign_in_method = models.CharField(max_length=20, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_unique_ci"),
        ]
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email = normalize_email(self.email)
        if not self.password:
            self.set_unusable_password()
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def organization(self) -> Organization | None:
        membership = self.memberships.select_related("organization").first()
        return membership.organization if membership else None


class Organization(models.Model):
    """A customer company, with the sign-in methods it allows."""

    name = models.CharField(max_length=200, unique=True)
    allow_email_link = models.BooleanField(
        "allow email sign-in links", default=True)
    allow_google = models.BooleanField("allow Sign in with Google", default=True)
    allow_microsoft = models.BooleanField("allow Sign in with Microsoft", default=True)
    auto_join = models.BooleanField(
        "auto-join verified domains", default=False,
        help_text="Anyone with an address at a verified domain may sign in and becomes a member.")
    # Strict mode: an emailed link opened on another device can approve or refuse the
    # sign-in, never sign that device in itself, so a forwarded or intercepted email cannot
    # open a session anywhere but on the screen that asked.
    strict_same_browser = models.BooleanField(
        "email links sign in only the browser that asked", default=False,
        help_text="A link opened on another device can approve the sign-in (with the number "
                  "shown on the screen that asked) or refuse it, but never signs that other "
                  "device in.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def allows(self, method: str) -> bool:
        return self.is_active and {
            "email": self.allow_email_link,
            "google": self.allow_google,
            "microsoft": self.allow_microsoft,
        }.get(method, False)


class OrganizationDomain(models.Model):
    """An email domain an organization has proven it owns (only verified ones auto-join)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="domains")
    domain = models.CharField(max_length=253, unique=True)
    verified = models.BooleanField(default=False)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.domain = self.domain.strip().lower()
        super().save(*args, **kwargs)


class GoogleWorkspaceDomain(models.Model):
    """A Google Workspace primary domain (the ID token's ``hd`` claim) pinned to an org."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="google_domains")
    domain = models.CharField(max_length=253, unique=True)

    def __str__(self) -> str:
        return self.domain

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.domain = self.domain.strip().lower()
        super().save(*args, **kwargs)


class MicrosoftTenant(models.Model):
    """A Microsoft Entra tenant (``tid``) registered to an org: the only tenants trusted."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="microsoft_tenants")
    tenant_id = models.CharField("tenant id", max_length=64, unique=True)

    def __str__(self) -> str:
        return self.tenant_id

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.tenant_id = self.tenant_id.strip().lower()
        super().save(*args, **kwargs)


class Membership(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        ADMIN = "admin", "Organization admin"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"],
                                               name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"
