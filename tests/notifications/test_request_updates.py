"""Service request updates: who is emailed when staff reply or change the status."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.accounts.models import User
from portal.mail.models import OutboundMessage
from portal.mail.worker import deliver_due
from portal.notifications.requests import KIND, announce_staff_update
from portal.servicedesk import services
from portal.servicedesk.models import ServiceRequest
from tests.factories import make_org, make_user
from tests.servicedesk.test_admin import change_post
from tests.signin.magic import html_of, text_of

pytestmark = pytest.mark.django_db
Choice = User.RequestUpdates


@pytest.fixture
def people(alice, northwind, contoso):
    """Northwind's members with each choice, a disabled one, and a Contoso follower."""
    def person(email, org, choice, **extra):
        user = make_user(email, org, **extra)
        User.objects.filter(pk=user.pk).update(request_updates=choice)
        return user
    return {
        "bob": person("bob@northwind.example", northwind, Choice.ORGANIZATION),
        "dave": person("dave@northwind.example", northwind, Choice.OFF),
        "erin": person("erin@northwind.example", northwind, Choice.MINE),
        "carol": person("carol@northwind.example", northwind, Choice.ORGANIZATION,
                        active=False),
        "zoe": person("zoe@contoso.example", contoso, Choice.ORGANIZATION),
    }


@pytest.fixture
def vpn(alice) -> ServiceRequest:
    return services.file_request(alice, title="VPN drops", description="Every ten minutes.")


def recipients() -> list[str]:
    return sorted(OutboundMessage.objects.filter(kind=KIND).values_list("to", flat=True))


def save_in_admin(client, sr: ServiceRequest, **changes: str) -> None:
    url = reverse("admin:servicedesk_servicerequest_change", args=[sr.pk])
    response = client.post(url, change_post(sr, **changes))
    assert response.status_code == 302, response.content.decode()[:2000]


def test_a_staff_reply_emails_the_filer_and_organization_followers_once(
        staff_client, people, vpn, smtp) -> None:
    save_in_admin(staff_client, vpn, reply="Which VPN client version?")
    assert recipients() == ["alice@northwind.example", "bob@northwind.example"]
    deliver_due()
    received = smtp.wait_for(2)
    assert sorted(r.rcpt_tos[0] for r in received) == recipients()
    mail = next(r for r in received if r.rcpt_tos == ["alice@northwind.example"])
    assert mail.message["Subject"] == f"New reply on {vpn.reference}: VPN drops"
    text = text_of(mail)
    assert "Which VPN client version?" in text
    assert f"/requests/{vpn.number}/" in text
    assert "because you filed" in text
    assert "Which VPN client version?" in html_of(mail)
    bob_text = text_of(next(r for r in received if r.rcpt_tos == ["bob@northwind.example"]))
    assert "every request of Northwind Logistics" in bob_text


def test_a_status_change_emails_the_same_people(staff_client, people, vpn) -> None:
    save_in_admin(staff_client, vpn, status="waiting")
    assert recipients() == ["alice@northwind.example", "bob@northwind.example"]
    message = OutboundMessage.objects.filter(to="alice@northwind.example").get()
    assert message.subject == f"{vpn.reference} is now Waiting on you: VPN drops"
    assert "Waiting on you (it was New)" in message.text_body


def test_a_reply_and_a_status_change_in_one_save_is_one_email_each(staff_client, people,
                                                                    vpn) -> None:
    save_in_admin(staff_client, vpn, status="resolved", reply="Fixed: new firmware.")
    assert recipients() == ["alice@northwind.example", "bob@northwind.example"]
    body = OutboundMessage.objects.get(to="alice@northwind.example").text_body
    assert "Fixed: new firmware." in body and "now Resolved (it was New)" in body


def test_a_change_of_priority_alone_emails_nobody(staff_client, people, vpn) -> None:
    save_in_admin(staff_client, vpn, priority="high")
    assert recipients() == []


def test_the_filer_who_chose_off_hears_nothing(staff_client, people, alice, vpn) -> None:
    User.objects.filter(pk=alice.pk).update(request_updates=Choice.OFF)
    save_in_admin(staff_client, vpn, reply="On it.")
    assert recipients() == ["bob@northwind.example"]


def test_a_customer_comment_emails_nobody(people, alice, vpn) -> None:
    services.add_comment(alice, vpn, "It happened again at 10:00.")
    services.add_comment(people["bob"], vpn, "Same here.")
    assert recipients() == []


def test_the_author_of_the_change_is_never_emailed(people, vpn) -> None:
    bob = people["bob"]
    bob.is_staff = True  # staff who also follow Northwind's requests
    bob.save(update_fields=["is_staff"])
    reply = services.reply_as_staff(bob, vpn, "Looking.")
    assert announce_staff_update(vpn, actor=bob, reply=reply) == 1
    assert recipients() == ["alice@northwind.example"]


def test_nobody_outside_the_organization_is_emailed(staff_client, people, alice, vpn,
                                                    contoso) -> None:
    # The filer has since moved to Contoso: the request stays Northwind's, and so do its emails.
    membership = alice.membership
    membership.organization = contoso
    membership.save()
    save_in_admin(staff_client, vpn, reply="Any news?")
    assert recipients() == ["bob@northwind.example"]


def test_a_turned_off_organization_is_emailed_nothing(staff_client, people, northwind,
                                                      vpn) -> None:
    northwind.is_active = False
    northwind.save()
    save_in_admin(staff_client, vpn, reply="Any news?")
    assert recipients() == []


def test_a_request_staff_file_in_the_admin_emails_followers_of_its_reply(
        staff_client, people, northwind) -> None:
    other = make_org("Fabrikam", ["fabrikam.example"])
    make_user("fay@fabrikam.example", other)
    response = staff_client.post(reverse("admin:servicedesk_servicerequest_add"), {
        **change_post(ServiceRequest(title="Printer", description="Offline.",
                                     status="new", priority="normal")),
        "organization": str(northwind.pk), "reply": "We noticed it is offline."})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert recipients() == ["bob@northwind.example"]  # staff filed it: no filer to tell


def test_what_people_typed_is_escaped_in_the_html_email(staff_client, people, alice) -> None:
    sr = services.file_request(alice, title="<b>Printer</b>", description="x")
    save_in_admin(staff_client, sr, reply='<img src="https://evil.example/t.gif">')
    message = OutboundMessage.objects.get(to="alice@northwind.example")
    assert "<img" not in message.html_body and "&lt;img" in message.html_body
    assert "&lt;b&gt;Printer&lt;/b&gt;" in message.html_body
