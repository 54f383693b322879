"""`portal worker` options, run in-process."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from portal.mail.models import OutboundMessage
from portal.mail.outbox import enqueue

pytestmark = pytest.mark.django_db


def test_worker_once_delivers_what_is_due_and_exits(smtp):
    enqueue(to="alice@northwind.example", subject="Hello", text="Hi")
    out = io.StringIO()
    call_command("worker", "--once", stdout=out)
    assert out.getvalue().strip() == "Handled 1 message."
    assert OutboundMessage.objects.get().status == "sent"
    assert len(smtp.wait_for(1)) == 1


@pytest.mark.parametrize("value", ["0", "-1", "3600"])
def test_worker_refuses_a_senseless_poll_interval(value):
    with pytest.raises(CommandError, match="poll-interval"):
        call_command("worker", "--poll-interval", value)
