"""The welcome email, rendered by the mail worker at send time.

The outbox row holds the invitation's id and the hash of the secret it was queued for,
never a link. At send time the worker derives the link from the invitation's seed; an
invitation resent, revoked, accepted or expired since is not sent (the newer email, if
any, carries the only live link).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils.html import strip_spaces_between_tags

from portal.core.clock import now
from portal.core.moments import format_moment, zone_named
from portal.mail.models import OutboundMessage
from portal.mail.renderers import Cancel, Rendered
from portal.orgadmin.invitations import link_of
from portal.orgadmin.models import Invitation
from portal.signin.oidc.providers import configured_providers


def _invitation_of(message: OutboundMessage) -> Invitation:
    invitation = (Invitation.objects.select_related("organization", "invited_by")
                  .filter(pk=message.payload.get("invitation")).first())
    if invitation is None:
        raise Cancel("invitation_missing")
    return invitation


def render_invitation(invitation: Invitation) -> Rendered:
    organization = invitation.organization
    inviter = invitation.invited_by
    zone = zone_named(organization.time_zone)
    federated = [p.label for p in configured_providers(organization)]
    context = {
        "brand": settings.PORTAL_BRAND,
        "organization": organization.name,
        "inviter": inviter.get_full_name() if inviter else f"An admin of {organization.name}",
        "inviter_email": inviter.email if inviter else "",
        "email": invitation.email,
        "link": link_of(invitation),
        "expires": format_moment(invitation.expires_at, zone),
        "role": invitation.get_role_display(),
        "admin": invitation.role == "admin",
        "email_sign_in": organization.allows("email"),
        "federated": " or ".join(federated),
        "base_url": str(settings.PORTAL_BASE_URL).rstrip("/"),
    }
    return Rendered(
        subject=(f"{context['inviter']} invited you to {organization.name} on "
                 f"{settings.PORTAL_BRAND}"),
        text=render_to_string("orgadmin/email/invitation.txt", context),
        html=strip_spaces_between_tags(
            render_to_string("orgadmin/email/invitation.html", context)))


class InvitationEmail:
    """Renderer registered as ``orgadmin.invitation`` (see ``portal.mail.renderers``)."""

    def render(self, message: OutboundMessage) -> Rendered:
        with transaction.atomic():
            invitation = _invitation_of(message)
            if invitation.token_hash != message.payload.get("token_hash"):
                raise Cancel("replaced")  # resent since: the newer email carries the link
            problem = invitation.problem(now())
            if problem is not None:
                raise Cancel(problem, expired=problem == "expired")
            return render_invitation(invitation)

    def delivered(self, message: OutboundMessage) -> None:
        return None

    def failed(self, message: OutboundMessage, error: str) -> None:
        return None

    def expired(self, message: OutboundMessage) -> None:
        return None
