"""File a request and comment on it in a real browser, with JavaScript turned off."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from portal.servicedesk.models import Comment, ServiceRequest
from tests.factories import make_org, make_user
from tests.servicedesk.conftest import BACKEND
from tests.support import screenshots

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_customer_files_a_request_and_comments_without_javascript(live_server, browser,
                                                                    artifacts):
    org = make_org("Northwind Logistics", ["northwind.example"])
    alice = make_user("alice@northwind.example", org, full_name="Alice Moreno")
    client = Client()
    client.force_login(alice, backend=BACKEND)
    context = browser.new_context(java_script_enabled=False)
    name = settings.SESSION_COOKIE_NAME
    context.add_cookies([{"name": name, "url": live_server.url,
                          "value": client.cookies[name].value}])
    page = context.new_page()
    try:
        page.goto(live_server.url + "/")
        page.get_by_role("link", name="File a new request").first.click()
        page.get_by_role("button", name="File the request").click()
        assert page.get_by_text("Give the request a short title.").first.is_visible()
        page.get_by_label("Title").fill("Warehouse printer offline")
        page.get_by_label("Description").fill("Dock 3 labels print blank.")
        page.get_by_label("Priority").select_option("high")
        page.get_by_role("button", name="File the request").click()
        page.get_by_role("heading", name="Warehouse printer offline").wait_for()
        assert "SR-1001 is filed" in page.content()
        page.get_by_label("Add a comment").fill("Restarted it, no change.")
        page.get_by_role("button", name="Add comment").click()
        page.get_by_text("Restarted it, no change.").wait_for()
        screenshots.take(page, path=str(artifacts / "request.png"), full_page=True)
    finally:
        context.close()
    sr = ServiceRequest.objects.get()
    assert (sr.title, sr.priority, sr.number) == ("Warehouse printer offline", "high", 1001)
    assert Comment.objects.get().author == alice
