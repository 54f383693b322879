from __future__ import annotations

import pytest
from django.urls import reverse

from portal.helpcenter import articles

pytestmark = pytest.mark.django_db

SLUGS = ["signing-in-with-a-magic-link", "the-email-never-arrived",
         "signing-in-with-google-or-microsoft", "signing-out-and-your-sessions",
         "filing-a-service-request"]


def test_index_lists_every_article_without_signing_in(client):
    response = client.get(reverse("helpcenter:index"))
    page = response.content.decode()
    assert response.status_code == 200
    for slug in SLUGS:
        assert reverse("helpcenter:article", args=[slug]) in page
    assert "Signing in with a magic link" in page


@pytest.mark.parametrize("slug", SLUGS)
def test_every_article_is_readable_without_signing_in(client, slug):
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
    assert articles.duration_text(seconds) == text


def test_an_article_file_without_a_header_is_reported(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<p>No header</p>")
    with pytest.raises(articles.ArticleFileError):
        articles._parse(broken)
