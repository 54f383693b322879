from __future__ import annotations

import pytest
from django.urls import reverse

from portal.core.text import duration_text
from portal.helpcenter import articles

pytestmark = pytest.mark.django_db

SLUGS = ["signing-in-with-a-magic-link", "the-email-never-arrived",
         "signing-in-with-google-or-microsoft", "signing-out-and-your-sessions",
         "filing-a-service-request", "running-your-organization"]
FEDERATION = "signing-in-with-google-or-microsoft"


def _provider(client_id: str) -> dict[str, str]:
    return {"client_id": client_id, "client_secret": "s" if client_id else "",
            "discovery_url": "https://idp.example/.well-known/openid-configuration"}


BOTH = {"google": _provider("g"), "microsoft": _provider("m")}
NONE = {"google": _provider(""), "microsoft": _provider("")}


@pytest.fixture
def both_providers(settings):
    """Sign in with Google and with Microsoft configured, as in most deployments."""
    settings.OIDC_PROVIDERS = BOTH


def test_index_lists_every_article_without_signing_in(client, both_providers):
    response = client.get(reverse("helpcenter:index"))
    page = response.content.decode()
    assert response.status_code == 200
    for slug in SLUGS:
        assert reverse("helpcenter:article", args=[slug]) in page
    assert "Signing in with a magic link" in page


@pytest.mark.parametrize("slug", SLUGS)
def test_every_article_is_readable_without_signing_in(client, slug, both_providers):
    response = client.get(reverse("helpcenter:article", args=[slug]))
    assert response.status_code == 200
    assert f"<h1>{articles.find(slug).title}</h1>" in response.content.decode()


def test_articles_are_listed_in_their_stated_order():
    assert [a.slug for a in articles.all_articles()] == SLUGS


def test_magic_link_article_states_the_configured_lifetime(client, settings):
    settings.MAGIC_LINK_TTL_SECONDS = 600
    page = client.get(reverse("helpcenter:article", args=[SLUGS[0]])).content.decode()
    assert "10 minutes" in page
    assert "15 minutes" not in page


def test_magic_link_article_names_the_default_fifteen_minutes(client):
    page = client.get(reverse("helpcenter:article", args=[SLUGS[0]])).content.decode()
    assert "<strong>15 minutes</strong>" in page
    assert "Your inbox is the key" in page


def test_email_never_arrived_names_the_configured_from_address(client, settings):
    settings.DEFAULT_FROM_EMAIL = "Acme IT <portal@acme.example>"
    page = client.get(reverse("helpcenter:article", args=[SLUGS[1]])).content.decode()
    assert "<code>portal@acme.example</code>" in page
    assert "Acme IT &lt;portal@acme.example&gt;" in page  # escaped, never raw markup
    assert "noreply@cloudsentry.com" not in page


def test_articles_use_the_configured_brand(client, settings):
    settings.PORTAL_BRAND = "Acme IT"
    page = client.get(reverse("helpcenter:article", args=[SLUGS[0]])).content.decode()
    assert "Acme IT has no passwords" in page


def test_sessions_article_links_to_the_sessions_page(client):
    page = client.get(reverse("helpcenter:article", args=[SLUGS[3]])).content.decode()
    assert reverse("signin:sessions") in page
    assert "8 hours" in page and "14 days" in page


@pytest.mark.parametrize("slug", ["no-such-article", "articles", "..", "views"])
def test_unknown_articles_are_not_found(client, slug):
    assert client.get(f"/help/{slug}/").status_code == 404


def test_a_path_outside_the_articles_folder_is_not_found(client):
    assert client.get("/help/..%2F..%2Fconfig%2Fsettings/").status_code == 404


def test_help_pages_refuse_posts(client):
    assert client.post(reverse("helpcenter:index")).status_code == 405


@pytest.mark.parametrize("seconds,text", [
    (60, "1 minute"), (900, "15 minutes"), (90, "1 minute 30 seconds"),
    (3600, "1 hour"), (28800, "8 hours"), (86400, "1 day"), (1209600, "14 days"),
    (45, "45 seconds"),
])
def test_durations_read_as_people_say_them(seconds, text):
    assert duration_text(seconds) == text


def test_an_article_file_without_a_header_is_reported(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<p>No header</p>")
    with pytest.raises(articles.ArticleFileError):
        articles._parse(broken)


# --- only what is configured is mentioned -------------------------------------------------------

def test_without_providers_no_help_page_offers_google_or_microsoft(client, settings):
    settings.OIDC_PROVIDERS = NONE
    index = client.get(reverse("helpcenter:index")).content.decode()
    assert reverse("helpcenter:article", args=[FEDERATION]) not in index
    assert client.get(reverse("helpcenter:article", args=[FEDERATION])).status_code == 404
    for slug in SLUGS:
        if slug == FEDERATION:
            continue
        page = client.get(reverse("helpcenter:article", args=[slug])).content.decode()
        assert FEDERATION not in page, slug
        # Mail filters of Microsoft 365 or Google Workspace may still be named; sign-in may not.
        for promise in ("Sign in with", "signing in with", "Google or Microsoft"):
            assert promise not in page, (slug, promise)
    sessions = client.get(reverse("helpcenter:article", args=[SLUGS[3]])).content.decode()
    assert "how it signed in\n(email link)" in sessions


def test_with_only_microsoft_the_help_names_only_microsoft(client, settings):
    settings.OIDC_PROVIDERS = {"google": _provider(""), "microsoft": _provider("m")}
    page = client.get(reverse("helpcenter:article", args=[FEDERATION])).content.decode()
    assert "<h1>Signing in with Microsoft</h1>" in page
    assert "<strong>Sign in with Microsoft</strong>" in page
    assert "Google" not in page
    index = client.get(reverse("helpcenter:index")).content.decode()
    assert "Using your company&#x27;s Microsoft 365 account" in index
    never = client.get(reverse("helpcenter:article", args=[SLUGS[1]])).content.decode()
    assert "Use Sign in with Microsoft</strong> if your company uses\n      Microsoft 365" in never


def test_with_both_providers_the_help_names_both(client, both_providers):
    page = client.get(reverse("helpcenter:article", args=[FEDERATION])).content.decode()
    assert "<h1>Signing in with Google or Microsoft</h1>" in page
    assert ("<strong>Sign in with Google</strong> or <strong>Sign in with Microsoft</strong>"
            in page)
    sessions = client.get(reverse("helpcenter:article", args=[SLUGS[3]])).content.decode()
    assert "(email link, Google or Microsoft)" in sessions


def test_an_article_header_may_only_need_what_the_portal_can_offer(tmp_path):
    odd = tmp_path / "odd.html"
    odd.write_text("{% comment %}\ntitle: Odd\nneeds: passkeys\n{% endcomment %}<p>x</p>")
    with pytest.raises(articles.ArticleFileError):
        articles._parse(odd)
