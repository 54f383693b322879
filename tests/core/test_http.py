"""The real client address and scheme: believed from trusted proxies only (issue 9, item 1)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from portal.audit.models import AuthEvent
from portal.audit.tags import Tag
from portal.core.http import resolve_client
from tests.signin.magic import ask

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
OFFICE_PROXIES = (ipaddress.ip_network("10.0.0.0/24"),)


@pytest.mark.parametrize(("peer", "forwarded_for", "expected"), [
    # No proxy in between: the connection's own address, whatever the header claims.
    ("203.0.113.5", "", "203.0.113.5"),
    ("203.0.113.5", "198.51.100.7", "203.0.113.5"),
    # nginx on loopback appended the address it saw: that one is the client.
    ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
    ("::1", "2001:db8::7", "2001:db8::7"),
    # A client's own X-Forwarded-For is to the left of what the proxy appended: ignored.
    ("127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"),
    ("127.0.0.1", "127.0.0.1, 198.51.100.7", "198.51.100.7"),
    # Garbage the client wrote, left of its real address, changes nothing.
    ("127.0.0.1", "not-an-ip, 198.51.100.7", "198.51.100.7"),
    # A malformed entry where the trusted proxy's should be: the proxy's own address,
    # never the attacker's entry further left.
    ("127.0.0.1", "6.6.6.6, not-an-ip", "127.0.0.1"),
    ("127.0.0.1", "6.6.6.6, ", "127.0.0.1"),
    ("127.0.0.1", "6.6.6.6, 198.51.100.7:443", "127.0.0.1"),
    ("127.0.0.1", "6.6.6.6, [2001:db8::7]", "127.0.0.1"),
    # A request from the proxy machine itself.
    ("127.0.0.1", "", "127.0.0.1"),
    # gunicorn on a dual-stack socket reports IPv4 peers as IPv4-mapped IPv6.
    ("::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"),
    ("::ffff:203.0.113.5", "198.51.100.7", "203.0.113.5"),
    # No usable peer address at all.
    ("", "198.51.100.7", ""),
    ("garbage", "198.51.100.7", ""),
])
def test_client_is_the_rightmost_hop_no_trusted_proxy_vouches_for(
        peer: str, forwarded_for: str, expected: str) -> None:
    assert resolve_client(peer, forwarded_for, LOOPBACK) == expected


def test_a_chain_of_trusted_proxies_is_walked_to_the_client() -> None:
    # Load balancer 10.0.0.1 → nginx 10.0.0.2 → portal: both are trusted.
    assert resolve_client("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.1",
                          OFFICE_PROXIES) == "198.51.100.7"
    # Only networks named are trusted: the same chain seen from an unnamed peer.
    assert resolve_client("10.0.1.2", "198.51.100.7, 10.0.0.1", OFFICE_PROXIES) == "10.0.1.2"


addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).filter(
    lambda a: not any(a in n for n in LOOPBACK)
    and not (a.version == 6 and a.ipv4_mapped is not None))


# What a client may write into X-Forwarded-For: addresses of its choosing, loopback ones
# (the proxy's own) included, and any garbage.
forged_headers = st.lists(st.one_of(addresses.map(str), st.sampled_from(["127.0.0.1", "::1"]),
                                    st.text(max_size=20)), max_size=6).map(", ".join)


@given(real=addresses, forged=forged_headers)
def test_nothing_a_client_writes_changes_the_address_it_is_counted_under(
        real: ipaddress.IPv4Address | ipaddress.IPv6Address, forged: str) -> None:
    # Behind the proxy: the proxy appends the real address to whatever the client sent.
    assert resolve_client("127.0.0.1", f"{forged}, {real}", LOOPBACK) == str(real)
    # Directly: the header is not believed at all.
    assert resolve_client(str(real), forged, LOOPBACK) == str(real)


@given(forged=forged_headers, broken=st.sampled_from(["", "x", "1.2.3.4:80", "::g"]))
def test_a_malformed_proxy_entry_never_yields_an_address_the_client_wrote(
        forged: str, broken: str) -> None:
    resolved = resolve_client("127.0.0.1", f"{forged}, {broken}", LOOPBACK)
    assert resolved == "127.0.0.1"


# Through the whole request: what the audit trail records (it, the rate limits, sessions
# and emails all call client_ip).
def _requested_ip() -> str | None:
    event = AuthEvent.objects.get(tag=Tag.LINK_REQUESTED.value)
    return event.ip


@pytest.mark.django_db
def test_the_audit_trail_records_the_address_a_trusted_proxy_forwarded() -> None:
    ask(Client(), "someone@example.com", REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7")
    assert _requested_ip() == "198.51.100.7"


@pytest.mark.django_db
def test_an_untrusted_peer_is_recorded_as_itself_whatever_it_forwards() -> None:
    ask(Client(), "someone@example.com", REMOTE_ADDR="203.0.113.5",
        HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert _requested_ip() == "203.0.113.5"


@pytest.mark.django_db
def test_forwarded_allow_ips_decides_which_peers_are_trusted(settings: Any) -> None:
    settings.FORWARDED_ALLOW_IPS = OFFICE_PROXIES
    ask(Client(), "someone@example.com", REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert _requested_ip() == "127.0.0.1"


# The scheme: SECURE_PROXY_SSL_HEADER alone would believe X-Forwarded-Proto from anyone.
# HSTS is sent only on requests Django considers secure, so it shows what Django believed.
@pytest.mark.django_db
@pytest.mark.parametrize(("peer", "secure"), [("127.0.0.1", True), ("::1", True),
                                              ("203.0.113.5", False)])
def test_x_forwarded_proto_is_believed_only_from_a_trusted_proxy(
        settings: Any, peer: str, secure: bool) -> None:
    settings.SECURE_HSTS_SECONDS = 3600
    assert settings.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    response = Client().get("/signin/", REMOTE_ADDR=peer, HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert ("Strict-Transport-Security" in response) is secure


def test_the_proxy_middleware_runs_before_anything_asks_for_the_scheme(settings: Any) -> None:
    assert settings.MIDDLEWARE[0] == "portal.core.middleware.TrustedProxyMiddleware"
