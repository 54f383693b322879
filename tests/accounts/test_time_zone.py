"""Times in the person's own zone: the middleware, the time-zone page, emails, the admin."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from portal.accounts import zones
from portal.audit.services import record_event
from portal.audit.tags import Tag
from portal.mail.models import OutboundMessage
from portal.passkeys.notices import passkey_changed
from portal.servicedesk import services
from tests.accounts.conftest import client_for
from tests.factories import make_user
from tests.signin.magic import ask, deliver_and_read, text_of

# 4 March 2030, 09:00 UTC: 10:00 in Berlin (CET), 18:00 in Tokyo (JST), 04:00 in New York.
T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
URL = "/account/time-zone/"
SRC = Path(__file__).resolve().parents[2] / "src" / "portal"


def set_zone(user: Any, name: str) -> None:
    user.time_zone = name
    user.save(update_fields=["time_zone"])


@pytest.fixture
def filed(alice: Any) -> Any:
    with time_machine.travel(T0, tick=False):
        return services.file_request(alice, title="Printer offline", description="Dock 3.",
                                     priority="normal")


# --- Every page in the reader's zone ---------------------------------------------------------

def test_pages_show_times_in_the_persons_own_zone(alice: Any, filed: Any) -> None:
    set_zone(alice, "Europe/Berlin")
    page = client_for(alice).get(filed.get_absolute_url()).content.decode()
    assert "4 Mar 2030, 10:00 CET" in page
    assert "09:00" not in page


def test_blank_means_the_organizations_default_zone(alice: Any, northwind: Any,
                                                    filed: Any) -> None:
    northwind.time_zone = "Asia/Tokyo"
    northwind.save(update_fields=["time_zone"])
    page = client_for(alice).get(filed.get_absolute_url()).content.decode()
    assert "4 Mar 2030, 18:00 JST" in page
    assert "Times in Asia/Tokyo" in page  # the footer names the zone and links to the page


def test_lists_use_the_zone_too(alice: Any, filed: Any) -> None:
    set_zone(alice, "America/New_York")
    page = client_for(alice).get("/requests/").content.decode()
    assert "4 Mar 2030, 04:00 EST" in page


def test_each_request_gets_its_own_readers_zone(alice: Any, northwind: Any, filed: Any) -> None:
    """The zone is activated per request and never leaks into the next one."""
    bob = make_user("bob@northwind.example", northwind)
    set_zone(alice, "Asia/Tokyo")
    alice_client, bob_client = client_for(alice), client_for(bob)
    assert "18:00 JST" in alice_client.get(filed.get_absolute_url()).content.decode()
    assert "09:00 UTC" in bob_client.get(filed.get_absolute_url()).content.decode()


def test_no_template_writes_a_date_format_by_hand() -> None:
    """Every moment shown to people goes through ``moment`` (the zone named)."""
    offenders = []
    for path in SRC.rglob("*"):
        if path.suffix not in {".html", ".txt"}:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            # |date:'c' is the machine-readable datetime="…" attribute of <time>: allowed.
            for found in re.findall(r"\|date(?::\s*(['\"][^'\"]*['\"]))?", line):
                if found not in {"'c'", '"c"'}:
                    offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
            if "UTC" in line and "|moment" not in line and "{{" in line and "date" in line:
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# --- The time-zone page ------------------------------------------------------------------------

def test_the_page_lists_zones_grouped_by_region_with_the_default_first(alice: Any) -> None:
    with time_machine.travel(T0, tick=False):
        response = client_for(alice).get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "My organization&#x27;s default (UTC)" in page
    assert '<optgroup label="Europe">' in page and '<optgroup label="America">' in page
    assert '<option value="Europe/Berlin">Berlin (UTC+01:00)</option>' in page
    assert '<option value="America/Argentina/Buenos_Aires">Argentina / Buenos Aires (UTC-03:00)' in page
    assert 'id="zone-suggestion"' in page and "portal/timezone.js" in page


def test_choosing_a_zone_saves_it_and_says_so(alice: Any) -> None:
    client = client_for(alice)
    response = client.post(URL, {"time_zone": "Europe/Berlin"}, follow=True)
    alice.refresh_from_db()
    assert alice.time_zone == "Europe/Berlin"
    page = response.content.decode()
    assert "Times are now shown in Europe/Berlin." in page
    assert '<option value="Europe/Berlin" selected>' in page


def test_choosing_the_default_clears_the_persons_own_zone(alice: Any, northwind: Any) -> None:
    northwind.time_zone = "Europe/London"
    northwind.save(update_fields=["time_zone"])
    set_zone(alice, "Asia/Tokyo")
    response = client_for(alice).post(URL, {"time_zone": ""}, follow=True)
    alice.refresh_from_db()
    assert alice.time_zone == ""
    assert "Times now follow your organization&#x27;s default, Europe/London." in (
        response.content.decode())


@pytest.mark.parametrize("value", ["Mars/Olympus_Mons", "US/Eastern", "../../etc/passwd",
                                   "europe/berlin", "Europe/Berlin\x00", "x" * 500])
def test_a_zone_not_in_the_list_is_refused_and_nothing_changes(alice: Any, value: str) -> None:
    set_zone(alice, "Asia/Tokyo")
    response = client_for(alice).post(URL, {"time_zone": value})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was changed." in page and "Choose a time zone from the list" in page
    assert 'aria-invalid="true"' in page
    alice.refresh_from_db()
    assert alice.time_zone == "Asia/Tokyo"


def test_the_service_refuses_what_the_form_would(alice: Any) -> None:
    with pytest.raises(ValueError):
        zones.choose_time_zone(alice, "Mars/Olympus_Mons")


def test_the_page_needs_a_sign_in() -> None:
    response = Client().get(URL)
    assert response.status_code == 302 and "/signin/" in response["Location"]


def test_choosable_zones_are_real_iana_names() -> None:
    names = zones.choosable_zones()
    assert {"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"} <= names
    assert "US/Eastern" not in names and not any(n.startswith(("posix/", "right/"))
                                                 for n in names)


# --- Emails in the recipient's zone ------------------------------------------------------------

def test_the_sign_in_email_gives_times_in_the_recipients_zone(alice: Any, smtp: Any) -> None:
    set_zone(alice, "Europe/Berlin")
    with time_machine.travel(T0, tick=False):
        ask(Client(), alice.email)
        (link,) = deliver_and_read(smtp)
    text = text_of(link.email)
    assert "until 4 Mar 2030, 10:15 CET (15 minutes after it was requested)" in text
    assert "at 4 Mar 2030, 10:00 CET." in text


def test_the_sign_in_email_uses_the_organizations_zone_when_the_person_has_none(
        alice: Any, northwind: Any, smtp: Any) -> None:
    northwind.time_zone = "America/New_York"
    northwind.save(update_fields=["time_zone"])
    with time_machine.travel(T0, tick=False):
        ask(Client(), alice.email)
        (link,) = deliver_and_read(smtp)
    assert "until 4 Mar 2030, 04:15 EST" in text_of(link.email)


def test_the_passkey_notice_gives_the_time_in_the_recipients_zone(alice: Any) -> None:
    set_zone(alice, "Asia/Tokyo")
    with time_machine.travel(T0, tick=False):
        passkey_changed(alice, "added", "Work laptop")
    message = OutboundMessage.objects.get(to=alice.email)
    assert "on 4 Mar 2030, 18:00 JST." in message.text_body
    assert "on 4 Mar 2030, 18:00 JST." in message.html_body


# --- The staff admin ---------------------------------------------------------------------------

def test_the_staff_admin_writes_moments_one_way_in_the_staff_members_zone(
        sam: Any, alice: Any) -> None:
    set_zone(sam, "Europe/Berlin")
    with time_machine.travel(T0, tick=False):
        event = record_event(Tag.LINK_REDEEMED, user=alice, ip="203.0.113.7")
    client = client_for(sam)
    listing = client.get(reverse("admin:audit_authevent_changelist")).content.decode()
    assert "4 Mar 2030, 10:00 CET" in listing
    detail = client.get(reverse("admin:audit_authevent_change", args=[event.pk]))
    assert "4 Mar 2030, 10:00 CET" in detail.content.decode()


def test_signed_out_pages_are_in_utc(settings: Any) -> None:
    from django.template import Context, Template
    from django.utils import timezone

    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        response = Client().get("/signin/")
    assert response.status_code == 200
    assert timezone.get_current_timezone_name() == settings.TIME_ZONE  # nothing leaked
    rendered = Template("{% load portal_tags %}{{ t|moment }}").render(Context({"t": T0}))
    assert rendered == "4 Mar 2030, 09:00 UTC"


def test_staff_who_belong_to_no_organization_are_offered_the_portals_default(sam: Any) -> None:
    page = client_for(sam).get(URL).content.decode()
    assert "The portal&#x27;s default (UTC)" in page
    assert "organization" not in page.split('id="zone-heading"')[1].split("</section>")[0]
