"""Fixtures of the mail tests: a DKIM key pair, a recording renderer, worker processes."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings
from django.db import connection

from portal.mail import renderers
from portal.mail.models import OutboundMessage
from portal.mail.renderers import Cancel, Rendered
from tests.support.smtp import SMTPServer
from tests.support.workers import Workers


@dataclass
class DkimKey:
    selector: str
    domain: str
    private_key_file: Path
    dns_record: bytes

    def dnsfunc(self, name: bytes, timeout: int = 5) -> bytes:
        """Answer the DKIM TXT query the way DNS would, for this key only."""
        expected = f"{self.selector}._domainkey.{self.domain}.".encode()
        return self.dns_record if name == expected else b""


@pytest.fixture
def dkim_key(tmp_path: Path, settings: Any) -> DkimKey:
    """A fresh RSA key, with the portal's DKIM settings pointing at it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    settings.DKIM_SELECTOR = "portal2026"
    settings.DKIM_PRIVATE_KEY_FILE = str(path)
    settings.DKIM_DOMAIN = "cloudsentry.com"
    return DkimKey("portal2026", "cloudsentry.com", path, record)


@dataclass
class RecordingRenderer:
    """A renderer that records its calls; ``outcome`` decides what ``render`` does."""

    outcome: Any = None  # None renders; a Cancel or another exception is raised
    calls: list[tuple[str, int, str]] = field(default_factory=list)
    on_render: Any = None  # optional callable(message) run first, e.g. to write a row

    def render(self, message: OutboundMessage) -> Rendered:
        self.calls.append(("render", message.pk, ""))
        if self.on_render is not None:
            self.on_render(message)
        if self.outcome is not None:
            raise self.outcome
        secret = f"secret-{message.payload.get('n', 0)}"
        return Rendered(subject="Your sign-in link",
                        text=f"Sign in: https://portal.example/signin/link/{secret}/\n",
                        html=f'<p><a href="https://portal.example/signin/link/{secret}/">'
                             "Sign in</a></p>")

    def delivered(self, message: OutboundMessage) -> None:
        self.calls.append(("delivered", message.pk, message.message_id))

    def failed(self, message: OutboundMessage, error: str) -> None:
        self.calls.append(("failed", message.pk, error))

    def expired(self, message: OutboundMessage) -> None:
        self.calls.append(("expired", message.pk, ""))

    def hooks(self) -> list[str]:
        return [name for name, _, _ in self.calls]


@pytest.fixture
def renderer() -> Iterator[RecordingRenderer]:
    instance = RecordingRenderer()
    renderers.register("test.recording", instance)
    yield instance
    renderers._REGISTRY.pop("test.recording", None)


@pytest.fixture
def workers(on_postgres: None, transactional_db: None, smtp: SMTPServer,
            tmp_path: Path) -> Iterator[Workers]:
    """Start `portal worker` processes on the test database, sending to the test server.

    They share this process's SECRET_KEY, so what they derive from it (a sign-in link's
    code HMAC) checks out here.
    """
    db = connection.settings_dict
    env = {**os.environ,
           # The test database pytest-django created (test_<name>), not the configured one.
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
           "DJANGO_SETTINGS_MODULE": "portal.config.settings",
           "PORTAL_DEBUG": "false", "PORTAL_SECRET_KEY": django_settings.SECRET_KEY,
           "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none",
           "SMTP_USERNAME": "", "SMTP_TIMEOUT_SECONDS": "10",
           "DKIM_SELECTOR": "", "DKIM_PRIVATE_KEY_FILE": "", "PYTHONUNBUFFERED": "1"}
    running = Workers(env, tmp_path)
    try:
        yield running
    finally:
        # Stop every process before pytest-django empties the tables under them.
        running.kill_all()


__all__ = ["Cancel", "DkimKey", "RecordingRenderer"]
