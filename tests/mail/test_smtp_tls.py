"""STARTTLS, implicit TLS and login against a real aiosmtpd server with a test certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portal.mail.models import OutboundMessage
from portal.mail.outbox import enqueue
from portal.mail.worker import deliver_due
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test relay")])
    moment = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(moment - dt.timedelta(minutes=5))
            .not_valid_after(moment + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    return context


def check_login(server: Any, session: Any, envelope: Any, mechanism: str,
                auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login, auth_data.password) == (b"portal", b"relay-password")
    return AuthResult(success=ok, handled=False)


def point_at(settings: Any, server: SMTPServer, *, tls: bool = False, ssl_: bool = False,
             user: str = "portal", password: str = "relay-password",  # noqa: S107 - test relay
             ) -> None:
    settings.EMAIL_HOST = server.host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = tls
    settings.EMAIL_USE_SSL = ssl_
    settings.EMAIL_HOST_USER = user
    settings.EMAIL_HOST_PASSWORD = password


@pytest.fixture
def trusted(certificate, monkeypatch) -> None:
    # The sender verifies certificates against the default trust store; make ours part of it.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))


@pytest.fixture
def starttls_server(certificate) -> Iterator[SMTPServer]:
    server = SMTPServer(tls_context=server_context(certificate), require_starttls=True,
                        authenticator=check_login, auth_required=True)
    server.start()
    yield server
    server.stop()


def test_starttls_and_login_deliver_the_message(starttls_server, settings, trusted):
    point_at(settings, starttls_server, tls=True)
    message = enqueue(to="alice@northwind.example", subject="Hi", text="Over TLS")
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT, message.last_error
    assert len(starttls_server.wait_for(1)) == 1


def test_wrong_relay_password_is_a_retryable_configuration_error(starttls_server, settings,
                                                                 trusted):
    point_at(settings, starttls_server, tls=True, password="wrong")
    message = enqueue(to="alice@northwind.example", subject="Hi", text="x")
    deliver_due()
    message.refresh_from_db()
    # Failing every queued message for a typo in the settings would lose mail; retry instead.
    assert message.status == OutboundMessage.Status.RETRYING
    assert message.attempts.get().smtp_code == 535
    assert starttls_server.messages == []


def test_untrusted_certificate_is_refused(starttls_server, settings):
    point_at(settings, starttls_server, tls=True)
    message = enqueue(to="alice@northwind.example", subject="Hi", text="x")
    deliver_due()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.RETRYING
    assert "CERTIFICATE_VERIFY_FAILED" in message.last_error
    assert starttls_server.messages == []


def test_implicit_tls_delivers_the_message(certificate, settings, trusted):
    server = SMTPServer(ssl_context=server_context(certificate))
    server.start()
    try:
        point_at(settings, server, ssl_=True, user="")
        message = enqueue(to="alice@northwind.example", subject="Hi", text="Implicit TLS")
        deliver_due()
        message.refresh_from_db()
        assert message.status == OutboundMessage.Status.SENT, message.last_error
        assert len(server.wait_for(1)) == 1
    finally:
        server.stop()
