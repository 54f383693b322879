"""Rule 9 under pressure: an office behind one address gets through, a flood spends nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from portal.signin.models import SignInRequest
from tests.factories import make_org
from tests.signin.magic import ask

pytestmark = pytest.mark.django_db

MORNING = datetime(2030, 3, 4, 8, 40, tzinfo=UTC)
OFFICE_NAT = "198.51.100.20"


def test_forty_people_behind_one_office_address_all_get_links() -> None:
    # The default limits, as shipped: 40 colleagues arrive between 8:40 and 8:45 and all
    # ask for a link through the office's one public address.
    make_org(auto_join=True)
    codes = []
    with time_machine.travel(MORNING, tick=False) as clock:
        for n in range(40):
            codes.append(ask(Client(), f"person{n}@northwind.example",
                             REMOTE_ADDR=OFFICE_NAT).status_code)
            clock.shift(timedelta(seconds=7))
    assert codes == [302] * 40
    assert SignInRequest.objects.filter(ip=OFFICE_NAT).count() == 40


def test_one_address_cannot_spray_links_at_many_inboxes(settings: Any) -> None:
    per_ip = int(settings.SIGNIN_RATE_LIMITS["ip"].split("/")[0])
    with time_machine.travel(MORNING, tick=False):
        codes = [ask(Client(), f"victim{n}@example.com", REMOTE_ADDR="203.0.113.66").status_code
                 for n in range(per_ip + 10)]
    assert codes == [302] * per_ip + [429] * 10
    assert SignInRequest.objects.count() == per_ip


def test_an_ipv6_client_cannot_rotate_addresses_within_its_64(settings: Any) -> None:
    settings.SIGNIN_RATE_LIMITS = dict(settings.SIGNIN_RATE_LIMITS, ip="3/15m")
    with time_machine.travel(MORNING, tick=False):
        codes = [ask(Client(), f"victim{n}@example.com",
                     REMOTE_ADDR=f"2001:db8:7:7::{n + 1:x}").status_code for n in range(5)]
        other = ask(Client(), "someone@example.com", REMOTE_ADDR="2001:db8:7:8::1")
    assert codes == [302, 302, 302, 429, 429]
    assert other.status_code == 302


def test_a_refused_flood_for_one_address_leaves_everyone_else_served(settings: Any) -> None:
    # A flood for Alice from 200 rotating addresses, while 15 other people sign in. Only
    # the flood's first five (Alice's allowance) are admitted; its 195 refusals spend none
    # of the overall budget, so everyone else is served until that budget is really used.
    settings.SIGNIN_RATE_LIMITS = dict(settings.SIGNIN_RATE_LIMITS, address="5/15m",
                                       ip="50/15m", **{"global": "20/m"})
    flood, others = [], []
    with time_machine.travel(MORNING, tick=False):
        for n in range(200):
            flood.append(ask(Client(), "alice@northwind.example",
                             REMOTE_ADDR=f"198.51.100.{n + 1}").status_code)
            if n % 13 == 12:
                others.append(ask(Client(), f"person{n}@northwind.example",
                                  REMOTE_ADDR=f"203.0.113.{n // 13}").status_code)
    assert flood.count(302) == 5
    assert others == [302] * 15
    assert SignInRequest.objects.count() == 20
