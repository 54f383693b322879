"""Static files and the friendly error pages (the health check: test_health.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client, RequestFactory

from portal.core import views

pytestmark = pytest.mark.django_db


@pytest.fixture
def production_static(settings: Any, tmp_path: Path) -> None:
    """Static files as production serves them: WhiteNoise, compressed storage, no DEBUG."""
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path  # an empty collectstatic target; finders fill the gap
    settings.STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    }
    assert settings.WHITENOISE_USE_FINDERS is True
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE


@pytest.mark.usefixtures("production_static")
def test_whitenoise_serves_the_stylesheet_in_production_mode() -> None:
    response = Client().get("/static/portal/portal.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    body = b"".join(response.streaming_content)
    response.close()  # WhiteNoise streams from an open file
    assert b"--accent" in body


@pytest.mark.usefixtures("production_static")
def test_pages_link_the_stylesheet_whitenoise_serves() -> None:
    client = Client()
    page = client.get("/signin/").content.decode()
    assert 'href="/static/portal/portal.css"' in page
    response = client.get("/static/portal/portal.css")
    response.close()
    assert response.status_code == 200


@pytest.mark.usefixtures("production_static")
def test_unknown_static_file_is_a_404_not_a_500() -> None:
    assert Client().get("/static/portal/nothing-here.css").status_code == 404


def test_unknown_page_renders_the_friendly_404(client: Client, settings: Any) -> None:
    settings.DEBUG = False
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    assert "The address may be mistyped" in response.content.decode()
    assert [t.name for t in response.templates][:2] == ["core/error.html", "base.html"]


def test_unknown_host_renders_the_friendly_400(client: Client, settings: Any) -> None:
    settings.DEBUG = False
    response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert "That request could not be read" in response.content.decode()


def test_malformed_host_header_is_a_400_not_a_500(client: Client, settings: Any) -> None:
    settings.DEBUG = False
    response = client.get("/healthz", HTTP_HOST="bad host\x00name")
    assert response.status_code == 400


def test_server_error_page_is_friendly_and_says_500() -> None:
    response = views.server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    assert b"Something went wrong on our side" in response.content


def test_form_without_csrf_token_gets_the_plain_403_page(settings: Any) -> None:
    settings.DEBUG = False
    client = Client(enforce_csrf_checks=True)
    response = client.post("/signin/signout/")
    assert response.status_code == 403
    assert "Please try that again" in response.content.decode()
