"""The Notifications page: a person's choice of request emails; the sign-in notice explained."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.accounts.models import User

pytestmark = pytest.mark.django_db
URL = "/account/notifications/"


def test_signed_out_people_are_sent_to_sign_in() -> None:
    response = Client().get(URL)
    assert response.status_code == 302 and "/signin/" in response["Location"]


def test_the_page_shows_the_current_choice_and_the_sign_in_notice(alice_client) -> None:
    page = alice_client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="mine"\n               aria-describedby="request_updates-mine-hint" checked' in html
    assert html.count(" checked") == 1
    assert "New sign-in notices" in html and "organization's setting" in html
    assert 'href="/account/notifications/"' in alice_client.get("/").content.decode()


def test_saving_a_choice_keeps_it(alice_client, alice) -> None:
    response = alice_client.post(URL, {"request_updates": "organization"})
    assert response.status_code == 302 and response["Location"] == URL
    alice.refresh_from_db()
    assert alice.request_updates == User.RequestUpdates.ORGANIZATION
    page = alice_client.get(URL).content.decode()
    assert "Saved." in page
    assert 'value="organization"\n               aria-describedby="request_updates-organization-hint" checked' in page


@pytest.mark.parametrize("data", [{"request_updates": "everything"}, {}])
def test_a_bad_choice_is_refused_with_words_and_nothing_changes(alice_client, alice,
                                                                data) -> None:
    User.objects.filter(pk=alice.pk).update(request_updates=User.RequestUpdates.OFF)
    response = alice_client.post(URL, data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was changed." in html and 'role="alert"' in html
    alice.refresh_from_db()
    assert alice.request_updates == User.RequestUpdates.OFF


def test_the_page_says_when_the_organization_turned_sign_in_notices_off(alice_client,
                                                                       northwind) -> None:
    northwind.new_sign_in_notices = False
    northwind.save(update_fields=["new_sign_in_notices"])
    html = alice_client.get(URL).content.decode()
    assert "Northwind Logistics has turned off" in html
