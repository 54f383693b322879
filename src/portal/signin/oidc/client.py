"""Talk to an OpenID provider: discovery, JWKS and the code exchange (Authlib, with PKCE).

Every call has a timeout, and every way a provider can fail to answer (refused connection,
timeout, 5xx, a body that is not JSON) becomes ``ProviderUnavailable``, which the person
sees as "Google is not answering right now", never as a server error. Callers must not
hold a database transaction open around these calls: a slow provider would hold row locks
(and a connection) for as long as it dawdles.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from typing import Any
from urllib.parse import urlsplit

import redis
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from django.core.cache import cache
from django.db import DatabaseError

from portal.signin.oidc.errors import CodeRejected, ProviderUnavailable
from portal.signin.oidc.providers import Provider

# (connect, read) seconds. A sign-in waits on these, so they are short.
TIMEOUT = (5, 10)
DISCOVERY_TTL = 600
JWKS_TTL = 600
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_https(url: str) -> None:
    """Refuse plain-HTTP endpoints except on loopback (the test provider, a local proxy).

    Codes, client secrets and signing keys travel over these URLs; over plain HTTP anyone on
    the path could read or replace them.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname or "")):
        return
    raise ValueError(f"{url!r} is not an https URL")


def _get_json(provider: Provider, url: str) -> dict[str, Any]:
    try:
        _require_https(url)
        response = requests.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(provider.label, url=url, error=type(exc).__name__) from None
    if not isinstance(body, dict):
        raise ProviderUnavailable(provider.label, url=url, error="not a JSON object")
    return body


log = logging.getLogger("portal.signin.oidc")
# What the cache backends raise when their store is down (Redis, or the database cache).
CACHE_ERRORS = (redis.RedisError, DatabaseError)


def _cached(key: str) -> Any:
    """Return a cached document, or None; the cache only saves round trips to the provider."""
    try:
        return cache.get(key)
    except CACHE_ERRORS:
        log.warning("cache unreachable; fetching from the provider", exc_info=True)
        return None


def _remember(key: str, value: dict[str, Any], ttl: int) -> None:
    try:
        cache.set(key, value, ttl)
    except CACHE_ERRORS:
        log.warning("cache unreachable; not keeping the provider's document", exc_info=True)


def _cache_key(kind: str, url: str) -> str:
    return f"signin:oidc:{kind}:{hashlib.sha256(url.encode()).hexdigest()}"


def fetch_discovery(provider: Provider) -> dict[str, Any]:
    """Return the provider's discovery document, from a short-lived cache when possible."""
    key = _cache_key("discovery", provider.discovery_url)
    cached = _cached(key)
    if isinstance(cached, dict):
        return cached
    document = _get_json(provider, provider.discovery_url)
    missing = [name for name in REQUIRED_METADATA if not isinstance(document.get(name), str)]
    try:
        for name in REQUIRED_METADATA[1:]:
            _require_https(str(document.get(name)))
    except ValueError:
        missing.append("https endpoints")
    if missing:
        raise ProviderUnavailable(provider.label, url=provider.discovery_url,
                                  error=f"discovery lacks {', '.join(missing)}")
    _remember(key, document, DISCOVERY_TTL)
    return document


def fetch_jwks(provider: Provider, jwks_uri: str, *, refresh: bool = False) -> dict[str, Any]:
    """Return the provider's signing keys; ``refresh`` skips the cache (key rotation)."""
    key = _cache_key("jwks", jwks_uri)
    if not refresh:
        cached = _cached(key)
        if isinstance(cached, dict):
            return cached
    document = _get_json(provider, jwks_uri)
    if not isinstance(document.get("keys"), list):
        raise ProviderUnavailable(provider.label, url=jwks_uri, error="JWKS has no keys")
    _remember(key, document, JWKS_TTL)
    return document


def _session(provider: Provider, redirect_uri: str) -> OAuth2Session:
    # client_secret_post: both Google and Microsoft accept it, and it sidesteps the
    # form-encoding ambiguity of secrets with special characters inside HTTP Basic.
    return OAuth2Session(provider.client_id, provider.client_secret, scope=provider.scope,
                         redirect_uri=redirect_uri, code_challenge_method="S256",
                         token_endpoint_auth_method="client_secret_post",  # noqa: S106
                         default_timeout=TIMEOUT)


def authorization_url(provider: Provider, discovery: dict[str, Any], *, redirect_uri: str,
                      state: str, nonce: str, code_verifier: str) -> str:
    """Build the URL that sends the browser to the provider (code flow, PKCE S256)."""
    with _session(provider, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            discovery["authorization_endpoint"], state=state, nonce=nonce,
            code_verifier=code_verifier)
    return str(url)


def exchange_code(provider: Provider, discovery: dict[str, Any], *, code: str,
                  redirect_uri: str, code_verifier: str) -> dict[str, Any]:
    """Trade the authorization code (and our PKCE verifier) for tokens."""
    try:
        with _session(provider, redirect_uri) as client:
            token = client.fetch_token(discovery["token_endpoint"], grant_type="authorization_code",
                                       code=code, code_verifier=code_verifier)
    except OAuthError as exc:
        # invalid_grant and friends: a used or expired code, a verifier that does not match.
        raise CodeRejected(provider.label, error=str(exc.error)[:100]) from None
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(provider.label, url=discovery["token_endpoint"],
                                  error=type(exc).__name__) from None
    return dict(token)
