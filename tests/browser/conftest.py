"""Fixtures of the browser suite: the live portal, axe-core, and an auditor for each page.

axe-core comes from npm (``npm install --prefix tests/support/a11y``); its script is read
from disk and injected into each page, so the pages themselves ship no test code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.factories import make_org, make_user
from tests.signin.magic import deliver_and_read
from tests.support import screenshots
from tests.support.smtp import SMTPServer

AXE_JS = (Path(__file__).resolve().parents[1] / "support" / "a11y" / "node_modules"
          / "axe-core" / "axe.min.js")
# WCAG 2.1 level A and AA: what the portal promises (labels, focus, contrast, names).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: tags, resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(' ')),
  }));
}"""
# WCAG 1.4.10 (reflow): at 320 CSS pixels wide no text may need sideways scrolling. Data
# tables and preformatted text are the criterion's own exceptions (two-dimensional content),
# but the portal's tables stack into rows on a phone, so the page as a whole, tables
# included, must fit too (``Auditor.check_width``).
NARROW = {"width": 320, "height": 640}
ALICE = "alice@northwind.example"
BOB = "bob@northwind.example"
# Provider buttons render from settings alone; nothing here contacts these addresses.
FAKE_PROVIDERS = {
    "google": {"client_id": "portal-google", "client_secret": "unused",
               "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration"},
    "microsoft": {"client_id": "portal-microsoft", "client_secret": "unused",
                  "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration"},
}
# A phone, for the other-device half of the email journey: an iPhone 14-sized touch screen.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, "
                       "like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"}
FIND_OVERFLOW = """() => {
  const limit = document.documentElement.clientWidth + 1;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node && found.length < 5; node = walker.nextNode()) {
    if (!node.textContent.trim() || node.parentElement.closest('table, pre')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    if (range.getBoundingClientRect().right > limit) found.push(node.textContent.trim().slice(0, 60));
  }
  return found;
}"""

# Reflow, tables included: the page itself must not be wider than the screen.
PAGE_WIDTH = "() => [document.documentElement.scrollWidth, window.innerWidth]"
# The phone layout's convention (portal.css): every data table is <table class="rows"> and
# every body cell names its column in data-label, so on a phone each row becomes a card
# of labelled lines. Layout tables (role=presentation, in emails) are not data tables.
TABLES_OFF_CONVENTION = """() => {
  const found = [];
  for (const table of document.querySelectorAll('table:not([role=presentation])')) {
    if (!table.classList.contains('rows')) { found.push('a table without class="rows"'); continue; }
    for (const cell of table.querySelectorAll('tbody td')) {
      if (!(cell.getAttribute('data-label') || '').trim()) {
        found.push('a cell without data-label: ' + cell.textContent.trim().slice(0, 40));
      }
    }
  }
  return found;
}"""

# WCAG contrast of two colours as a page sees them. A background is the first opaque one
# found walking up from ``start`` (white if none); the portal's CSS has no translucent ones.
CONTRAST_JS = """
window.__contrast = (foreground, start) => {
  const rgb = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const background = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0)) return c;
    }
    return [255, 255, 255];
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [lum(rgb(foreground)), lum(background(start))];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
};
"""


@pytest.fixture(scope="session")
def axe_source() -> str:
    require("axe-core (npm install --prefix tests/support/a11y)", AXE_JS.exists())
    return AXE_JS.read_text(encoding="utf-8")


@dataclass
class Auditor:
    """Runs axe on pages, saves a screenshot of each, and reports every violation at the end.

    Collecting instead of failing on the first page means one run lists all there is to fix.
    """

    source: str
    folder: Path
    audited: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self, page: Any, name: str) -> None:
        """Audit the page as it is now; ``name`` labels the screenshot and any violations."""
        page.wait_for_load_state("load")
        screenshots.take(page, path=str(self.folder / f"{name}.png"), full_page=True)
        page.add_script_tag(content=self.source)
        violations = page.evaluate(RUN_AXE, WCAG_TAGS)
        self.audited.append(name)
        for v in violations:
            self.problems.append(
                f"{name} ({page.url}): {v['id']} [{v['impact']}] {v['help']}; "
                f"at {', '.join(v['targets'])}")
        for problem in page.evaluate(TABLES_OFF_CONVENTION):
            self.problems.append(f"{name} ({page.url}): phone layout: {problem}")
        size = page.viewport_size
        page.set_viewport_size(NARROW)
        for text in page.evaluate(FIND_OVERFLOW):
            self.problems.append(f"{name} ({page.url}): reflow: at 320px wide {text!r} "
                                 "runs off the side of the screen")
        self.check_width(page, name)
        page.set_viewport_size(size)

    def check_width(self, page: Any, name: str) -> None:
        """Record a problem if the page, as the screen is now, scrolls sideways."""
        width, screen = page.evaluate(PAGE_WIDTH)
        if width > screen:
            screenshots.take(page, path=str(self.folder / f"{name}-{screen}px-too-wide.png"),
                            full_page=True)
            self.problems.append(f"{name} ({page.url}): reflow: at {screen}px wide the page is "
                                 f"{width}px wide and scrolls sideways")

    def assert_clean(self) -> None:
        assert self.audited, "no page was audited"
        if self.problems:
            pytest.fail(f"{len(self.problems)} accessibility violation(s) on "
                        f"{len(self.audited)} audited page(s):\n" + "\n".join(self.problems),
                        pytrace=False)


@pytest.fixture
def auditor(axe_source: str, artifacts: Path) -> Auditor:
    return Auditor(axe_source, artifacts)


NewContext = Callable[..., Any]


@pytest.fixture
def new_context(browser: Any) -> Iterator[NewContext]:
    """Open browser contexts (closed after the test); options as for ``browser.new_context``
    (a desktop-sized viewport unless ``viewport`` is given)."""
    opened: list[Any] = []

    def make(**options: Any) -> Any:
        # bypass_csp: the injected axe script must run even if the portal adds a CSP later.
        options = {"viewport": {"width": 1000, "height": 760}, **options}
        context = browser.new_context(bypass_csp=True, **options)
        # Playwright's own default: a page that never comes still fails, while two passes
        # of `make test` share two cores with their two Chromiums.
        context.set_default_timeout(30_000)
        opened.append(context)
        if options.get("java_script_enabled", True):
            context.add_init_script(CONTRAST_JS)
        return context

    yield make
    for context in opened:
        context.close()


@pytest.fixture
def portal(live_server: Any, smtp: SMTPServer, settings: Any) -> str:
    """The live portal, sending links that point at itself; Northwind with Alice and Bob."""
    settings.PORTAL_BASE_URL = live_server.url
    org = make_org("Northwind Logistics", ["northwind.example"])
    make_user(ALICE, org, full_name="Alice Moreno")
    make_user(BOB, org, full_name="Bob Ng")
    return str(live_server.url)


def sign_in(page: Any, url: str, smtp: SMTPServer, email: str = ALICE) -> None:
    """Sign ``page``'s browser in the way a person does: ask, then open the emailed link."""
    smtp.clear()
    page.goto(f"{url}/signin/")
    page.get_by_label("Work email address").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    (link,) = deliver_and_read(smtp)
    page.goto(link.url)
    page.get_by_role("button", name="Sign out").wait_for()
