"""The time-zone page in a real browser: the browser's own zone offered, and the page without JS."""

from __future__ import annotations

import pytest

from portal.accounts.models import User
from tests.browser.conftest import ALICE, NewContext, sign_in
from tests.support.smtp import SMTPServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_browsers_zone_is_offered_and_one_click_uses_it(
        portal: str, smtp: SMTPServer, new_context: NewContext) -> None:
    page = new_context(timezone_id="Europe/Berlin").new_page()
    sign_in(page, portal, smtp)
    page.goto(f"{portal}/account/time-zone/")
    offer = page.locator("#zone-suggestion")
    offer.get_by_text("Your browser says Europe/Berlin. Use it?").wait_for()
    offer.get_by_role("button", name="Use Europe/Berlin").click()
    page.get_by_text("Times are now shown in Europe/Berlin.").wait_for()
    assert User.objects.get(email=ALICE).time_zone == "Europe/Berlin"
    # Already in use: nothing more to offer.
    assert offer.is_hidden()
    assert page.get_by_role("combobox", name="Time zone").input_value() == "Europe/Berlin"


def test_nothing_is_offered_when_the_browser_is_already_in_the_zone_shown(
        portal: str, smtp: SMTPServer, new_context: NewContext) -> None:
    page = new_context(timezone_id="UTC").new_page()
    sign_in(page, portal, smtp)
    page.goto(f"{portal}/account/time-zone/")
    page.get_by_role("heading", name="Time zone").wait_for()
    page.wait_for_load_state("load")
    assert page.locator("#zone-suggestion").is_hidden()


def test_without_javascript_the_list_alone_sets_the_zone(
        portal: str, smtp: SMTPServer, new_context: NewContext) -> None:
    page = new_context(java_script_enabled=False, timezone_id="Europe/Berlin").new_page()
    sign_in(page, portal, smtp)
    page.goto(f"{portal}/account/time-zone/")
    assert page.locator("#zone-suggestion").is_hidden()
    page.get_by_role("combobox", name="Time zone").select_option("Asia/Tokyo")
    page.get_by_role("button", name="Save time zone").click()
    page.get_by_text("Times are now shown in Asia/Tokyo.").wait_for()
    assert User.objects.get(email=ALICE).time_zone == "Asia/Tokyo"
    # The footer of every page now says so.
    page.goto(f"{portal}/")
    page.get_by_text("Times in Asia/Tokyo").wait_for()
