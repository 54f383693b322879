"""Every page of the portal on a narrow screen and on a phone (the list: tests/browser/pages.py).

At 320 CSS pixels wide (WCAG 1.4.10, reflow) each page is audited with axe-core, its text
must stay on screen, the page as a whole, tables included, must not scroll sideways, and
its data tables must follow the stacked-rows convention. On a 390x844 touch phone the page
must not scroll sideways either. Signed out and signed in (an organization admin, a member
who is not one, staff), the way people sign in: a link by email, opened in Chromium.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import (
    ALICE,
    FAKE_PROVIDERS,
    NARROW,
    PHONE,
    Auditor,
    NewContext,
    sign_in,
)
from tests.browser.pages import PAGES, seed
from tests.support import screenshots
from tests.support.smtp import SMTPServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENS: dict[str, dict[str, Any]] = {"320px": {"viewport": NARROW}, "phone": PHONE}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_page_fits_the_screen_and_has_no_accessibility_violations(
        screen: str, portal: str, smtp: SMTPServer, settings: Any, new_context: NewContext,
        auditor: Auditor) -> None:
    settings.OIDC_PROVIDERS = FAKE_PROVIDERS  # their buttons and their help article show
    values = seed()
    tabs: dict[str | None, Any] = {}
    for person in dict.fromkeys(page.who for page in PAGES):
        tab = new_context(**SCREENS[screen]).new_page()
        if person is not None:
            sign_in(tab, portal, smtp, email=person)
        tabs[person] = tab
    # A second browser of Alice's, so "Your sessions" has a row to sign out.
    sign_in(new_context(**SCREENS[screen]).new_page(), portal, smtp, email=ALICE)

    for page in PAGES:
        tab = tabs[page.who]
        response = tab.goto(portal + page.path.format(**values))
        assert response is not None
        if response.status != page.status:
            auditor.problems.append(f"{page.name}: answered {response.status}, "
                                    f"expected {page.status}")
        name = f"{screen}-{page.name}"
        if screen == "320px":
            auditor.check(tab, name)
        else:
            tab.wait_for_load_state("load")
            screenshots.take(tab, path=str(auditor.folder / f"{name}.png"), full_page=True)
            auditor.audited.append(name)
            auditor.check_width(tab, name)
    auditor.assert_clean()


def test_phone_tables_become_labelled_rows(portal: str, smtp: SMTPServer,
                                           new_context: NewContext) -> None:
    """On a phone each row of a data table is a card: no header row, each value labelled."""
    seed()
    tab = new_context(**PHONE).new_page()
    sign_in(tab, portal, smtp, email=ALICE)
    tab.goto(f"{portal}/requests/?status=all")
    table = tab.locator("table.rows")
    header = table.locator("thead").bounding_box()
    assert header is not None and header["width"] <= 1, "the heading row still shows"
    cell = table.locator("tbody tr").first.locator("td[data-label=Status]")
    label = cell.evaluate("td => getComputedStyle(td, '::before').content")
    assert label == '"Status: "'
    cells = table.locator("tbody tr").first.locator("td")
    boxes = [cells.nth(i).bounding_box() for i in range(cells.count())]
    # Stacked: each cell starts below the one before, at the card's left edge.
    tops = [box["y"] for box in boxes if box]
    assert tops == sorted(tops) and len(set(tops)) == len(tops), tops
    # On a wide screen the same table is a table again.
    tab.set_viewport_size({"width": 1000, "height": 760})
    assert table.locator("thead").bounding_box()["width"] > 500
