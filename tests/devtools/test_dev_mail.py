"""The development catcher and its pages: mail readable, links clickable, never in production."""

from __future__ import annotations

import html
import re
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from portal.core.clock import now
from portal.devtools import catcher
from portal.mail.compose import compose
from portal.mail.outbox import new_message_id
from tests.support.smtp import free_port

pytestmark = pytest.mark.django_db
LINK = "http://127.0.0.1:8000/signin/link/abc123/"


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def running_catcher(maildir: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    controller = catcher.start(maildir, port=port)
    yield "127.0.0.1", port
    controller.stop()


@pytest.fixture
def dev_settings(settings: Any, maildir: Path) -> Any:
    settings.DEBUG = True
    settings.PORTAL_DEV_MAIL_DIR = str(maildir)
    return settings


def send_to(address: tuple[str, int], *, subject: str = "Your sign-in link",
            html_body: str = f'<p><a href="{LINK}">Sign in</a></p>') -> bytes:
    composed = compose(to="alice@northwind.example", subject=subject,
                       text=f"Sign in: {LINK}\n", html=html_body,
                       message_id=new_message_id(), date=now())
    with smtplib.SMTP(*address, timeout=5) as conn:
        conn.sendmail(composed.sender, [composed.recipient], composed.data)
    return composed.data


def only_key(maildir: Path) -> str:
    [path] = list((maildir / "new").iterdir())
    return path.name


def test_catcher_keeps_the_exact_bytes_in_a_maildir(running_catcher, maildir):
    data = send_to(running_catcher)
    [path] = list((maildir / "new").iterdir())
    assert path.read_bytes().replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")


def test_inbox_lists_caught_mail_newest_first(running_catcher, dev_settings, client):
    send_to(running_catcher, subject="First")
    send_to(running_catcher, subject="Second")
    page = client.get(reverse("devmail:inbox"))
    assert page.status_code == 200
    body = page.content.decode()
    assert body.index("Second") < body.index("First")
    assert "alice@northwind.example" in body


def test_message_page_shows_text_and_a_sandboxed_html_part_with_clickable_links(
        running_catcher, dev_settings, client, maildir):
    send_to(running_catcher)
    page = client.get(reverse("devmail:message", args=[only_key(maildir)]))
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "no-referrer"
    body = page.content.decode()
    # The text part's link is a real link.
    assert f'<a href="{LINK}"' in body
    [iframe] = re.findall(r"<iframe[^>]*>", body)
    sandbox = re.search(r'sandbox="([^"]*)"', iframe).group(1)
    # No scripts and no same-origin access for the email; links may open in the window.
    assert "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
    assert "allow-top-navigation-by-user-activation" in sandbox
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', iframe).group(1))
    assert '<base target="_top">' in srcdoc
    assert f'href="{LINK}"' in srcdoc


def test_html_part_cannot_break_out_of_the_srcdoc_attribute(running_catcher, dev_settings,
                                                             client, maildir):
    send_to(running_catcher, html_body='<p>x" onload="alert(1)</p><script>alert(2)</script>')
    body = client.get(reverse("devmail:message", args=[only_key(maildir)])).content.decode()
    [iframe] = re.findall(r"<iframe[^>]*>", body)
    assert "onload=" not in iframe.replace("onload=&quot;", "")
    assert "<script>alert(2)" not in body


def test_unknown_or_malformed_key_is_404(dev_settings, client, maildir):
    maildir.mkdir(parents=True)
    assert client.get(reverse("devmail:message", args=["1700000000.nothing.host"])).status_code == 404
    assert client.get("/dev/mail/..%2F..%2Fetc%2Fpasswd/").status_code == 404


def test_dev_mail_pages_are_404_outside_debug_mode(running_catcher, settings, client, maildir):
    settings.DEBUG = False
    settings.PORTAL_DEV_MAIL_DIR = str(maildir)
    send_to(running_catcher)
    assert client.get(reverse("devmail:inbox")).status_code == 404
    assert client.get(reverse("devmail:message", args=[only_key(maildir)])).status_code == 404


def test_dev_mail_pages_are_404_without_a_catcher_folder(settings, client):
    settings.DEBUG = True
    settings.PORTAL_DEV_MAIL_DIR = ""
    assert client.get(reverse("devmail:inbox")).status_code == 404


def test_empty_inbox_says_what_to_do(dev_settings, client):
    page = client.get(reverse("devmail:inbox"))
    assert b"No mail caught yet" in page.content
