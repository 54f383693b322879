"""Help articles: Django template files in ``helpcenter/articles/``, one per slug.

Each file opens with a comment block naming its title, a one-line summary and its place in
the index::

    {% comment %}
    title: Signing in with a magic link
    summary: What the link is, how long it works, and what it protects.
    order: 10
    {% endcomment %}

Articles are templates, not stored text, so the numbers they state (how long a link works,
the From address) are read from settings when the page is rendered and cannot drift from
what the portal actually does. Only files found in the folder can be shown: a slug is looked
up in that list, never joined onto a path.

The same goes for the ways in: an article mentions Google or Microsoft only through
``federation`` (``portal.signin.context_processors``), so it names only the providers that
are configured. ``needs: federation`` in the header hides an article (from the index, and
its address answers 404) while no provider is configured, and ``{federation}`` or
``{suites}`` in its title or summary become the configured names ("Google or Microsoft",
"Google Workspace").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr
from functools import cache
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest
from django.template import engines
from django.utils.safestring import SafeString

from portal.core.text import duration_text
from portal.signin.oidc.providers import offer

ARTICLES_DIR = Path(__file__).resolve().parent / "articles"
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_HEADER_RE = re.compile(r"\A\s*\{% comment %\}(?P<body>.*?)\{% endcomment %\}", re.DOTALL)
# What an article's ``needs:`` may name: something the portal may or may not offer.
NEEDS = ("", "federation")


class ArticleFileError(Exception):
    """An article file is missing its header; raised at load, so a broken file is noticed."""


def _fill(text: str) -> str:
    """Name the configured providers where a header says ``{federation}`` or ``{suites}``."""
    offered = offer()
    return text.format(federation=offered.names, suites=offered.suites)


@dataclass(frozen=True)
class Article:
    slug: str
    title_text: str  # as written in the header, ``{federation}`` not yet filled in
    summary_text: str
    order: int
    source: str
    needs: str = ""

    @property
    def title(self) -> str:
        return _fill(self.title_text)

    @property
    def summary(self) -> str:
        return _fill(self.summary_text)

    @property
    def available(self) -> bool:
        """Say whether this portal offers what the article is about."""
        return self.needs != "federation" or bool(offer())


def _parse(path: Path) -> Article:
    text = path.read_text(encoding="utf-8")
    match = _HEADER_RE.match(text)
    if match is None:
        raise ArticleFileError(f"{path.name}: starts without a {{% comment %}} header")
    fields: dict[str, str] = {}
    for line in match.group("body").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    if not fields.get("title"):
        raise ArticleFileError(f"{path.name}: the header names no title")
    try:
        order = int(fields.get("order", "1000"))
    except ValueError:
        raise ArticleFileError(f"{path.name}: order must be a whole number") from None
    needs = fields.get("needs", "")
    if needs not in NEEDS:
        raise ArticleFileError(f"{path.name}: needs must be one of {', '.join(NEEDS[1:])}")
    return Article(slug=path.stem, title_text=fields["title"],
                   summary_text=fields.get("summary", ""), order=order, source=text,
                   needs=needs)


@cache
def all_articles() -> tuple[Article, ...]:
    """Return every article, in index order."""
    found = [_parse(path) for path in sorted(ARTICLES_DIR.glob("*.html"))
             if SLUG_RE.match(path.stem)]
    return tuple(sorted(found, key=lambda a: (a.order, a.title_text)))


def available_articles() -> list[Article]:
    """Return the articles about what this portal offers, in index order."""
    return [a for a in all_articles() if a.available]


def find(slug: str) -> Article | None:
    """Return the article called ``slug`` if this portal shows it, or ``None``."""
    return next((a for a in available_articles() if a.slug == slug), None)


def facts() -> dict[str, str]:
    """Return the settings an article may state, worded for people."""
    display_name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return {
        "link_lifetime": duration_text(settings.MAGIC_LINK_TTL_SECONDS),
        "link_minutes": str(settings.MAGIC_LINK_TTL_SECONDS // 60),
        "from_email": settings.DEFAULT_FROM_EMAIL,
        "from_address": address or settings.DEFAULT_FROM_EMAIL,
        "from_name": display_name,
        "session_idle": duration_text(settings.SESSION_IDLE_SECONDS),
        "session_max": duration_text(settings.SESSION_COOKIE_AGE),
        "invitation_lifetime": duration_text(settings.INVITATION_TTL_SECONDS),
        "recent_window": duration_text(settings.RECENT_SIGN_IN_SECONDS),
    }


def render_article(article: Article, request: HttpRequest) -> SafeString:
    """Render the article's body (the file is a trusted template shipped with the code)."""
    template = engines["django"].from_string(article.source)
    return SafeString(template.render({"article": article, **facts()}, request))
