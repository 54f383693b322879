"""People, the organizations they belong to, and each organization's sign-in policy.

Two rules live here because they must hold whatever code path changes a row (the admin,
a shell, a management command, a future organization-admin page):

- **One organization per person.** ``Membership.user`` is one-to-one, so the database
  refuses a second membership; ``User.organization`` is that one row's organization.
- **Disable means out, at once.** Every session carries an HMAC of the person's
  ``session_epoch`` (see ``User._get_session_auth_hash``). Whenever access is taken away
  (the person turned off, their staff or superuser status removed, their address changed,
  their membership removed or moved, their organization turned off) the epoch moves on,
  so Django flushes every older session at its next request, and it stays dead after the
  person is turned back on. ``access_revoked`` is then sent so the sign-in app can mark
  the "Your sessions" rows ended. Both ``save()`` and queryset ``update()`` keep this;
  raw SQL and ``bulk_update`` do not, and are not used for these fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac

from portal.accounts.signals import access_revoked

# Why a person's sessions were ended, as the audit trail names it.
DISABLED = "user_disabled"
STAFF_REMOVED = "staff_removed"
SUPERUSER_REMOVED = "superuser_removed"
EMAIL_CHANGED = "email_changed"
ORGANIZATION_DISABLED = "organization_disabled"
ORGANIZATION_CHANGED = "organization_changed"
MEMBERSHIP_REMOVED = "membership_removed"


def normalize_email(address: str) -> str:
    """Return the canonical form used for storage and lookup: trimmed and lower-case."""
    return address.strip().lower()


def domain_of(address: str) -> str:
    return normalize_email(address).rpartition("@")[2]


def revoke_access(user_ids: Iterable[int], reason: str) -> list[int]:
    """End every session of these people now and for good; return whose were ended.

    Moving the epoch on makes every session issued before it fail Django's check on the
    next request, whatever later happens to the account (turning it back on revives
    nothing). Call inside the transaction that takes the access away.
    """
    ids = sorted(set(user_ids))
    if ids:
        # The base manager's plain update: this is the epoch itself, not a revocation.
        User._base_manager.filter(pk__in=ids).update(session_epoch=F("session_epoch") + 1)
        announce_revoked(ids, reason)
    return ids


def announce_revoked(user_ids: list[int], reason: str) -> None:
    """Tell listeners (the sign-in app ends "Your sessions" rows) whose access just ended."""
    access_revoked.send(sender=User, user_ids=user_ids, reason=reason)


def _user_revocations(values: dict[str, Any]) -> dict[str, Q]:
    """Map each reason to revoke sessions to the stored rows it applies to.

    ``values`` are the fields about to be written. A stored row matching a condition has
    more access than it is about to have (or another address), so its sessions must end.
    """
    found: dict[str, Q] = {}
    if values.get("is_active", True) is False:
        found[DISABLED] = Q(is_active=True)
    if values.get("is_staff", True) is False:
        found[STAFF_REMOVED] = Q(is_staff=True)
    if values.get("is_superuser", True) is False:
        found[SUPERUSER_REMOVED] = Q(is_superuser=True)
    if isinstance(values.get("email"), str):
        found[EMAIL_CHANGED] = ~Q(email=normalize_email(values["email"]))
    return found


class UserQuerySet(models.QuerySet["User"]):
    def update(self, **kwargs: Any) -> int:
        """Update rows; a change that takes access away also ends the people's sessions."""
        revocations = _user_revocations(kwargs)
        # Migrations' historical models share this manager; they update plainly.
        if not revocations or "session_epoch" in kwargs or self.model is not User:
            return super().update(**kwargs)
        if isinstance(kwargs.get("email"), str):
            kwargs["email"] = normalize_email(kwargs["email"])
        with transaction.atomic(using=self.db):
            losing: dict[int, list[str]] = {}
            for reason, condition in revocations.items():
                for pk in self.filter(condition).select_for_update().values_list(
                        "pk", flat=True):
                    losing.setdefault(pk, []).append(reason)
            count = super().update(**kwargs)
            by_reasons: dict[str, list[int]] = {}
            for pk, reasons in losing.items():
                by_reasons.setdefault(",".join(reasons), []).append(pk)
            for reason, ids in by_reasons.items():
                revoke_access(ids, reason)
        return count


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_queryset(self) -> UserQuerySet:
        return UserQuerySet(self.model, using=self._db)

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
    # No last_login and no last-method column: every sign-in already writes its "Your
    # sessions" row (method, when, where), which the admin and the members page read; one
    # more UPDATE of the person per sign-in would only copy it (docs/performance.md).
    last_login = None
    # An IANA zone name ("Europe/London"); blank means the organization's default zone.
    time_zone = models.CharField(
        max_length=64, blank=True,
        help_text="Times are shown in this zone; blank means the organization's default.")

    class RequestUpdates(models.TextChoices):
        MINE = "mine", "Requests I filed"
        ORGANIZATION = "organization", "Every request of my organization"
        OFF = "off", "None"

    # Which staff replies and status changes are emailed to this person.
    request_updates = models.CharField(
        "email me about", max_length=20, choices=RequestUpdates.choices,
        default=RequestUpdates.MINE,
        help_text="Staff replies and status changes on service requests.")
    # Moves on whenever access is taken away; every session carries an HMAC of it.
    session_epoch = models.PositiveIntegerField(
        default=0, editable=False,
        help_text="Changes whenever access is taken away; older sessions stop working.")

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
        """Save; if this takes access away, every older session of the person ends."""
        self.email = normalize_email(self.email)
        if not self.password:
            self.set_unusable_password()
        update_fields = kwargs.get("update_fields")
        written = {name: getattr(self, name) for name in
                   ("is_active", "is_staff", "is_superuser", "email")
                   if update_fields is None or name in update_fields}
        revocations = _user_revocations(written) if self.pk is not None else {}
        if not revocations:
            super().save(*args, **kwargs)
            return
        with transaction.atomic(using=kwargs.get("using")):
            # The stored row, locked, decides: only a real loss of access ends sessions.
            stored = (User._base_manager.filter(pk=self.pk).select_for_update()
                      .annotate(**{reason: ExpressionWrapper(condition,
                                                             output_field=BooleanField())
                                   for reason, condition in revocations.items()})
                      .values("session_epoch", *revocations).first())
            reasons = [reason for reason in revocations if stored and stored[reason]]
            if stored and reasons:
                self.session_epoch = stored["session_epoch"] + 1
                if update_fields is not None:
                    kwargs["update_fields"] = {*update_fields, "session_epoch"}
            super().save(*args, **kwargs)
            if reasons:
                announce_revoked([self.pk], ",".join(reasons))

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        """Return the HMAC every session of this person carries; Django checks it each request.

        Besides the (unusable) password it covers the address the person proved they
        control and the session epoch, so a changed address or a revocation turns every
        older session into a signed-out one, whichever code path made the change.
        """
        key_salt = "portal.accounts.models.User.get_session_auth_hash"
        value = f"{self.password}\x00{self.email}\x00{self.session_epoch}"
        return salted_hmac(key_salt, value, secret=secret, algorithm="sha256").hexdigest()

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email

    @property
    def organization(self) -> Organization | None:
        """Return the person's one organization, or None (staff belong to none).

        Django keeps the membership (or its absence) on the instance after the first look,
        so this is loaded at most once per instance; the signed-in user of a request comes
        with it already joined (``backends.PasswordlessBackend.get_user``).
        """
        try:
            return self.membership.organization
        except Membership.DoesNotExist:
            return None

    def access_refusal(self) -> str | None:
        """Return why this person may not hold a session now (a reason), or None if they may."""
        if not self.is_active:
            return DISABLED
        organization = self.organization
        if organization is not None and not organization.is_active:
            return ORGANIZATION_DISABLED
        return None


class OrganizationQuerySet(models.QuerySet["Organization"]):
    def update(self, **kwargs: Any) -> int:
        """Update rows; turning organizations off also ends their members' sessions."""
        if kwargs.get("is_active", True) is not False:
            return super().update(**kwargs)
        with transaction.atomic(using=self.db):
            turned_off = list(self.filter(is_active=True).select_for_update()
                              .values_list("pk", flat=True))
            count = super().update(**kwargs)
            revoke_access(members_of(turned_off), ORGANIZATION_DISABLED)
        return count


def members_of(organization_ids: Iterable[int]) -> list[int]:
    return list(Membership.objects.filter(organization_id__in=list(organization_ids))
                .values_list("user_id", flat=True))


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
    require_passkeys_for_admins = models.BooleanField(
        "require passkeys for organization admins", default=False,
        help_text="Organization admins must sign in with a passkey: after any other sign-in "
                  "they are asked to add or use one.")
    allow_passkey = models.BooleanField("allow passkeys", default=True)
    new_sign_in_notices = models.BooleanField(
        "email a notice of each sign-in from a new browser", default=True,
        help_text="Members are emailed when their account signs in from a browser it has "
                  "not seen before.")
    time_zone = models.CharField(
        "default time zone", max_length=64, default="UTC",
        help_text="Times are shown in this zone to members who have not chosen their own.")
    is_active = models.BooleanField(
        default=True, help_text="Turning an organization off signs every member out at once "
                                "and stops every sign-in method for them.")
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save; turning the organization off ends every session of its members."""
        update_fields = kwargs.get("update_fields")
        if (self.pk is None or self.is_active
                or (update_fields is not None and "is_active" not in update_fields)):
            super().save(*args, **kwargs)
            return
        with transaction.atomic(using=kwargs.get("using")):
            was_active = Organization._base_manager.filter(
                pk=self.pk, is_active=True).select_for_update().exists()
            super().save(*args, **kwargs)
            if was_active:
                revoke_access(members_of([self.pk]), ORGANIZATION_DISABLED)

    def allows(self, method: str) -> bool:
        return self.is_active and {
            "email": self.allow_email_link,
            "google": self.allow_google,
            "microsoft": self.allow_microsoft,
            "passkey": self.allow_passkey,
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
    """A person's one organization: the database allows one membership per person.

    The organization decides the person's sign-in policy, which requests they see and
    which organization their audit rows name, so a second one would silently switch all
    three. Moving someone is a change of this row (their sessions end; see ``save``).
    """

    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        ADMIN = "admin", "Organization admin"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE,
                                     related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save; moving a membership to another organization (or person) ends sessions."""
        if self.pk is None:
            super().save(*args, **kwargs)
            return
        with transaction.atomic(using=kwargs.get("using")):
            stored = (Membership._base_manager.filter(pk=self.pk).select_for_update()
                      .values("user_id", "organization_id").first())
            super().save(*args, **kwargs)
            if stored is None:
                return
            if stored["user_id"] != self.user_id:
                revoke_access([stored["user_id"]], MEMBERSHIP_REMOVED)
            elif stored["organization_id"] != self.organization_id:
                revoke_access([self.user_id], ORGANIZATION_CHANGED)


def _membership_removed(sender: type[Membership], instance: Membership, origin: Any = None,
                        **kwargs: Any) -> None:
    """End the sessions of a person whose membership was deleted (by any path).

    When the person themself is being deleted, their sessions die with them; writing an
    epoch or an audit row for a row about to vanish would only break the deletion.
    """
    deleting_people = isinstance(origin, User) or (
        isinstance(origin, models.QuerySet) and origin.model is User)
    if not deleting_people:
        revoke_access([instance.user_id], MEMBERSHIP_REMOVED)


models.signals.post_delete.connect(_membership_removed, sender=Membership,
                                   dispatch_uid="accounts.membership_removed")
