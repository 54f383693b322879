"""Record audit events."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.core.http import client_ip, printable, user_agent
from portal.metrics import counters

FAILURES = {Tag.LINK_DECLINED, Tag.LINK_DELIVERY_FAILED, Tag.LINK_EXPIRED_UNSENT,
            Tag.LINK_EXPIRED_USE, Tag.LINK_REUSED, Tag.LINK_SUPERSEDED_USE,
            Tag.LINK_REVOKED_USE, Tag.LINK_UNKNOWN, Tag.LINK_RATE_LIMITED, Tag.LINK_CODE_FAILED,
            Tag.LINK_APPROVAL_FAILED, Tag.LINK_REFUSED, Tag.LINK_REFUSED_USE,
            Tag.LINK_SAME_BROWSER_ONLY,
            Tag.OIDC_FAILED, Tag.PASSKEY_FAILED, Tag.PASSKEY_RATE_LIMITED,
            Tag.INVITATION_REFUSED, Tag.ORGADMIN_INVITATION_RATE_LIMITED}
SUCCESSES = {Tag.LINK_REDEEMED, Tag.OIDC_SUCCEEDED, Tag.LINK_SENT, Tag.PASSKEY_SIGNED_IN,
             Tag.PASSKEY_REGISTERED, Tag.INVITATION_SIGNED_IN}


def _storable(value: Any) -> Any:
    """Return ``value`` with control characters replaced in every string, however nested.

    Details carry what clients and identity providers sent (an ``error_description``, a
    passkey library's message); PostgreSQL refuses NUL in text and in ``jsonb``, which
    would turn a refusal into a 500 and lose its audit row.
    """
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(key)): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value


def event(tag: Tag, *, request: HttpRequest | None = None, email: str = "",
          user: Any = None, organization: Any = None, ip: str | None = None,
          agent: str = "", reason: str = "", actor: Any = None, **detail: Any) -> AuthEvent:
    """Build one audit event, unsaved (``record_events`` writes several in one statement).

    ``actor`` is the staff member who made an admin change, when there is one.
    Its organization is ``user``'s unless given: pass users loaded with their organization
    (``select_related("membership__organization")``), or this costs a query per row.
    """
    if request is not None:
        ip = ip or client_ip(request)
        agent = agent or user_agent(request)
    if organization is None and user is not None:
        organization = user.organization
    outcome = (AuthEvent.Outcome.FAILURE if tag in FAILURES
               else AuthEvent.Outcome.SUCCESS if tag in SUCCESSES else AuthEvent.Outcome.INFO)
    return AuthEvent(
        created_at=now(), tag=tag.value, outcome=outcome, email=email or (
            user.email if user is not None else ""),
        user=user, organization=organization, ip=ip or None, user_agent=printable(agent[:400]),
        reason=printable(reason), detail=_storable(detail), actor=actor,
        actor_email=actor.email if actor is not None else "")


def record_event(tag: Tag, **fields: Any) -> AuthEvent:
    """Write one audit event; callers run it inside the transaction of what it records.

    ``fields`` are those of ``event``. Every event passes here or through ``record_events``,
    so these two are also where ``/metrics`` counts the ones it shows.
    """
    row = event(tag, **fields)
    row.save(force_insert=True)
    # Counted in Redis when this transaction commits; no SQL of its own (portal.metrics).
    counters.count_event(row.tag, row.detail)
    return row


def record_events(*rows: AuthEvent) -> None:
    """Write events built by ``event`` in one INSERT, in the caller's transaction."""
    AuthEvent.objects.bulk_create(rows)
    for row in rows:
        counters.count_event(row.tag, row.detail)
