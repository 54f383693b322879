"""Leave each person one membership before the database starts to insist on it (0003).

Until now a person could hold several memberships, and ``User.organization`` returned the
one with the lowest id (Django orders an unordered ``first()`` by primary key): that is the
oldest row, and the one that decided the person's sign-in policy and what they saw. It is
kept, so nobody's effective organization changes. Every other membership is deleted, and
each deletion is written to the audit trail as ``migration:membership:removed`` (the person,
the organization removed, its role and date, the organization kept), so staff can review
and restore any that were meant. Reversing this migration restores nothing.
"""

from django.db import migrations
from django.db.models import Count
from django.utils import timezone

TAG = "migration:membership:removed"  # portal.audit.tags.Tag.MEMBERSHIP_REMOVED_BY_MIGRATION


def keep_the_oldest_membership(apps, schema_editor):
    Membership = apps.get_model("accounts", "Membership")
    AuthEvent = apps.get_model("audit", "AuthEvent")
    crowded = (Membership.objects.values("user_id").annotate(n=Count("id"))
               .filter(n__gt=1).values_list("user_id", flat=True))
    for user_id in list(crowded):
        kept, *extra = (Membership.objects.select_related("user", "organization")
                        .filter(user_id=user_id).order_by("id"))
        for removed in extra:
            AuthEvent.objects.create(
                created_at=timezone.now(), tag=TAG, outcome="info", email=removed.user.email,
                user_id=user_id, organization_id=removed.organization_id,
                reason="one_organization_per_person",
                detail={"removed_organization": removed.organization.name,
                        "removed_role": removed.role,
                        "removed_membership_created_at": removed.created_at.isoformat(),
                        "kept_organization": kept.organization.name,
                        "kept_organization_id": kept.organization_id})
            removed.delete()


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(keep_the_oldest_membership, migrations.RunPython.noop),
    ]
