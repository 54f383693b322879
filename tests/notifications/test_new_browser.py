"""The new-sign-in notice: once per new browser, through the real outbox and SMTP server."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from portal.mail.models import OutboundMessage
from portal.mail.worker import deliver_due
from portal.notifications.browsers import KIND, notice_new_browser
from portal.notifications.models import KnownBrowser
from portal.signin.signals import signed_in
from tests.factories import make_user
from tests.signin.magic import ask, deliver_and_read, html_of, text_of

pytestmark = pytest.mark.django_db
ALICE = "alice@northwind.example"
FIREFOX_ON_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) "
                      "Gecko/20100101 Firefox/133.0")


def browser(agent: str = FIREFOX_ON_WINDOWS, ip: str = "127.0.0.1") -> Client:
    return Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)


def sign_in(client: Client, smtp, email: str = ALICE) -> None:
    """Sign ``client`` in as ``email`` with a link it asked for itself (one click)."""
    deliver_due()  # whatever was queued before (a notice) goes out first
    smtp.clear()
    ask(client, email)
    (link,) = deliver_and_read(smtp)
    assert client.get(link.path).status_code == 302
    smtp.clear()


def sign_in_elsewhere(client: Client, smtp, email: str = ALICE) -> None:
    """Ask for a link in a fresh browser and confirm it in ``client``."""
    deliver_due()
    smtp.clear()
    ask(Client(), email)
    (link,) = deliver_and_read(smtp)
    opened = client.get(link.path)
    assert opened.status_code == 302
    smtp.clear()
    confirmed = client.post(opened["Location"])
    assert confirmed.status_code == 302, confirmed.content.decode()[:500]


def notices() -> list[OutboundMessage]:
    return list(OutboundMessage.objects.filter(kind=KIND).order_by("id"))


def test_first_browser_ever_sends_no_notice(alice, smtp) -> None:
    sign_in(browser(), smtp)
    assert notices() == []
    assert KnownBrowser.objects.filter(user=alice).count() == 1


def test_new_browser_is_told_once_and_arrives_by_smtp(alice, smtp) -> None:
    alice.time_zone = "Europe/Paris"
    alice.save(update_fields=["time_zone"])
    laptop, phone = browser(), browser(ip="127.0.0.9")
    sign_in(laptop, smtp)
    sign_in(phone, smtp)
    (notice,) = notices()
    assert notice.to == ALICE
    deliver_due()
    (received,) = smtp.wait_for(1)
    assert received.rcpt_tos == [ALICE]
    assert received.message["Subject"] == "New sign-in to your Cloud Sentry account"
    text = text_of(received)
    assert "Signed in with: Email link" in text
    assert "Browser: Firefox on Windows" in text
    assert "IP address: 127.0.0.9" in text
    # Her own zone, named: Paris in December is CET.
    assert " CET" in text and "UTC" not in text
    assert "Sign out everywhere else" in text
    assert "/signin/sessions/" in text and "/account/notifications/" in text
    html = html_of(received)
    assert 'href="http://testserver/signin/sessions/"' in html or "/signin/sessions/" in html
    assert "<img" not in html  # no tracking pixel, no images at all

    # The same browser again: nothing. Another new one: one more.
    sign_in(phone, smtp)
    sign_in(laptop, smtp)
    assert len(notices()) == 1
    sign_in(browser(ip="127.0.0.10"), smtp)
    assert len(notices()) == 2
    assert KnownBrowser.objects.filter(user=alice).count() == 3


def test_a_browser_known_for_someone_else_is_new_for_alice(alice, northwind, smtp) -> None:
    make_user("bob@northwind.example", northwind)
    shared = browser()
    sign_in(browser(), smtp)              # Alice's own laptop
    sign_in(shared, smtp, "bob@northwind.example")
    sign_in(browser(), smtp, "bob@northwind.example")
    assert [m.to for m in notices()] == ["bob@northwind.example"]
    sign_in(shared, smtp)                 # Alice on Bob's browser: new for her
    assert [m.to for m in notices()] == ["bob@northwind.example", ALICE]


def test_no_notice_when_the_organization_turned_it_off(alice, northwind, smtp) -> None:
    northwind.new_sign_in_notices = False
    northwind.save(update_fields=["new_sign_in_notices"])
    sign_in(browser(), smtp)
    sign_in(browser(), smtp)
    assert notices() == []
    # Still recorded: turning notices on later tells only of browsers new from then on.
    assert KnownBrowser.objects.filter(user=alice).count() == 2


def test_confirmed_on_another_device_counts_that_device(alice, smtp) -> None:
    laptop, phone = browser(), browser()
    sign_in(laptop, smtp)
    sign_in_elsewhere(phone, smtp)
    assert len(notices()) == 1
    sign_in_elsewhere(phone, smtp)
    assert len(notices()) == 1


def test_only_a_hash_of_the_device_id_is_stored(alice, smtp) -> None:
    laptop = browser()
    sign_in(laptop, smtp)
    row = KnownBrowser.objects.get(user=alice)
    cookie = next(m.value for name, m in laptop.cookies.items() if "device" in name.lower())
    assert len(row.device_hash) == 64
    assert row.device_hash not in cookie


def test_a_known_browser_costs_the_sign_in_one_statement(alice, smtp,
                                                          django_assert_num_queries) -> None:
    """The confirm POST with a known browser: one more statement than without the hook."""
    phone = browser()
    sign_in(browser(), smtp)
    sign_in_elsewhere(phone, smtp)  # now known

    deliver_due()  # the phone's notice
    signed_in.disconnect(dispatch_uid="notifications.new_browser")
    try:
        smtp.clear()
        ask(Client(), ALICE)
        (link,) = deliver_and_read(smtp)
        opened = phone.get(link.path)
        with CaptureQueriesContext(connection) as without:
            assert phone.post(opened["Location"]).status_code == 302
        baseline = len(without)  # now: the next request empties Django's query log
    finally:
        signed_in.connect(notice_new_browser, dispatch_uid="notifications.new_browser")

    smtp.clear()
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    opened = phone.get(link.path)
    with django_assert_num_queries(baseline + 1):
        assert phone.post(opened["Location"]).status_code == 302
    assert len(notices()) == 1


def test_a_new_browser_costs_its_look_up_and_the_outbox_row(alice, smtp,
                                                            django_assert_max_num_queries) -> None:
    """Upsert, "any other browser?", the outbox INSERT, NOTIFY on PostgreSQL: four at most."""
    sign_in(browser(), smtp)
    signed_in.disconnect(dispatch_uid="notifications.new_browser")
    try:
        ask(Client(), ALICE)
        (link,) = deliver_and_read(smtp)
        first = browser()
        opened = first.get(link.path)
        with CaptureQueriesContext(connection) as without:
            assert first.post(opened["Location"]).status_code == 302
        baseline = len(without)
    finally:
        signed_in.connect(notice_new_browser, dispatch_uid="notifications.new_browser")
    smtp.clear()
    ask(Client(), ALICE)
    (link,) = deliver_and_read(smtp)
    second = browser()
    opened = second.get(link.path)
    with django_assert_max_num_queries(baseline + 4):
        assert second.post(opened["Location"]).status_code == 302
    assert len(notices()) == 1


def test_the_upsert_calls_a_browser_new_exactly_once(alice) -> None:
    from portal.core.clock import now
    from portal.notifications.browsers import record_browser

    # (new, others): the first browser is new with no others; again, it is known.
    assert record_browser(alice, "device-1", now()) == (True, False)
    assert record_browser(alice, "device-1", now()) == (False, False)
    assert KnownBrowser.objects.get(user=alice).sign_ins == 2
    # A second browser is new, and the person has another one: this is the notice case.
    assert record_browser(alice, "device-2", now()) == (True, True)
    assert record_browser(alice, "device-2", now()) == (False, True)


def test_staff_of_no_organization_always_get_the_notice(db, rf) -> None:
    sam = make_user("sam@cloudsentry.com", staff=True)
    request = rf.get("/", HTTP_USER_AGENT=FIREFOX_ON_WINDOWS, REMOTE_ADDR="127.0.0.5")
    for device in ("laptop", "phone"):
        notice_new_browser(None, request=request, user=sam, method="passkey", device=device)
    (notice,) = notices()
    assert notice.to == "sam@cloudsentry.com"
    assert "Signed in with: Passkey" in notice.text_body
    assert "always" not in notice.text_body and "whenever your account" in notice.text_body
