"""What clients send reaches the audit trail storable: control characters replaced."""

from __future__ import annotations

import pytest

from portal.audit.models import AuthEvent
from portal.audit.services import record_event
from portal.audit.tags import Tag

pytestmark = pytest.mark.django_db


def test_a_nul_from_an_identity_provider_is_stored_replaced_not_a_server_error() -> None:
    # An error_description is the provider's (or an attacker's) text; PostgreSQL refuses
    # NUL in text and jsonb, which used to turn this refusal into a 500 with no audit row.
    record_event(Tag.OIDC_FAILED, email="alice@northwind.example", reason="refused\x00",
                 agent="Mozilla\x00", error_description="bad\x00\r\nFAKE: line",
                 nested={"k\x00": ["v\x1b[31m"]})
    event = AuthEvent.objects.get()
    assert event.reason == "refused\ufffd"
    assert event.user_agent == "Mozilla\ufffd"
    assert event.detail == {"error_description": "bad\ufffd\ufffd\ufffdFAKE: line",
                            "nested": {"k\ufffd": ["v\ufffd[31m"]}}
