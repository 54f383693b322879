"""Validate an OpenID Connect ID token: signature (JWKS), iss, aud/azp, exp/iat/nbf, nonce.

Pure: no network, no database, no request. Keys come from a loader the caller passes in, so
the flow can fetch and cache the provider's JWKS and tests can hand over a key set of their
own. Every failed check raises ``TokenCheckFailed`` naming the check, which the flow turns
into a refusal and an audit reason.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

# Asymmetric algorithms only. "none" and the HMAC family are refused outright: with HS256
# the public JWKS (or the client secret) would become the key that forges tokens.
ALLOWED_ALGORITHMS = ("RS256", "PS256", "ES256")
DEFAULT_LEEWAY = 60  # seconds of clock difference tolerated on exp/iat/nbf
TENANT_PLACEHOLDER = "{tenantid}"
# Entra tenant ids are GUIDs. Checking the shape keeps a crafted ``tid`` from turning the
# issuer template into something else (a path segment, another host).
TENANT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# loader(refresh) returns a JWKS document; refresh=True must bypass any cache.
KeyLoader = Callable[[bool], Mapping[str, Any]]


class TokenCheckFailed(Exception):
    """The ID token failed ``check`` (``bad_signature``, ``wrong_audience``, ``expired``…)."""

    def __init__(self, check: str, detail: str = "") -> None:
        super().__init__(f"{check}: {detail}" if detail else check)
        self.check = check


@dataclass(frozen=True)
class Expected:
    """What a token must say to be ours.

    ``issuer`` is compared exactly. When it contains ``{tenantid}`` (Microsoft's
    multi-tenant discovery), it is first filled in with the token's ``tid``, so a token can
    only name the tenant that actually signed the user in. ``also_issuers`` lists exact
    aliases (Google documents both ``https://accounts.google.com`` and
    ``accounts.google.com``).
    """

    issuer: str
    client_id: str
    nonce: str
    also_issuers: tuple[str, ...] = ()
    leeway: int = DEFAULT_LEEWAY


def _header(raw: str) -> dict[str, Any]:
    try:
        segment = raw.split(".")[0]
        decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError):
        raise TokenCheckFailed("malformed", "header is not base64url JSON") from None
    if not isinstance(decoded, dict):
        raise TokenCheckFailed("malformed", "header is not an object")
    return decoded


def _key_set(document: Mapping[str, Any]) -> KeySet:
    keys = [k for k in document.get("keys", []) if isinstance(k, dict)
            and k.get("kty") in ("RSA", "EC") and k.get("use", "sig") == "sig"]
    try:
        return KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenCheckFailed("jwks_unusable", str(exc)) from None


def _kids(keys: KeySet) -> set[str]:
    return {str(k.kid) for k in keys.keys if k.kid}


def resolve_issuer(template: str, claims: Mapping[str, Any]) -> str:
    """Return the issuer this token must carry: the template filled with its own ``tid``."""
    if TENANT_PLACEHOLDER not in template:
        return template
    tid = claims.get("tid")
    if not isinstance(tid, str) or not TENANT_ID.match(tid):
        raise TokenCheckFailed("wrong_issuer", "no valid tid to resolve the issuer template")
    return template.replace(TENANT_PLACEHOLDER, tid)


def _number(claims: Mapping[str, Any], name: str, required: bool) -> int | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenCheckFailed("malformed", f"{name} is missing or not a number")
    return int(value)


def check_claims(claims: Mapping[str, Any], expected: Expected, now: float) -> str:
    """Check every claim the OpenID Connect spec asks a client to check; return the issuer."""
    issuer = resolve_issuer(expected.issuer, claims)
    if claims.get("iss") not in (issuer, *expected.also_issuers):
        raise TokenCheckFailed("wrong_issuer", f"iss is {claims.get('iss')!r}")

    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or expected.client_id not in audiences:
        raise TokenCheckFailed("wrong_audience", f"aud is {audience!r}")
    azp = claims.get("azp")
    # A token meant for several parties must name us as the party it was issued to.
    if (len(audiences) > 1 or azp is not None) and azp != expected.client_id:
        raise TokenCheckFailed("wrong_audience", f"azp is {azp!r}")

    exp = _number(claims, "exp", required=True)
    iat = _number(claims, "iat", required=True)
    nbf = _number(claims, "nbf", required=False)
    assert exp is not None and iat is not None
    if now >= exp + expected.leeway:
        raise TokenCheckFailed("expired", f"exp {exp} is before now {int(now)}")
    if iat > now + expected.leeway:
        raise TokenCheckFailed("issued_in_future", f"iat {iat} is after now {int(now)}")
    if nbf is not None and nbf > now + expected.leeway:
        raise TokenCheckFailed("not_yet_valid", f"nbf {nbf} is after now {int(now)}")

    nonce = claims.get("nonce")
    # The nonce ties the token to the browser session that started this sign-in: without
    # it a token captured elsewhere could be replayed into our callback.
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(),
                                                              expected.nonce.encode()):
        raise TokenCheckFailed("nonce_mismatch")

    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenCheckFailed("malformed", "sub is missing")
    return issuer


def validate_id_token(raw: str, *, keys: KeyLoader, expected: Expected,
                      now: float) -> dict[str, Any]:
    """Verify ``raw`` and return its claims, or raise ``TokenCheckFailed``.

    Providers rotate signing keys, so an unknown ``kid`` makes us fetch the JWKS again,
    once; a key that still is not there means the token was not signed by the provider.
    """
    if not isinstance(raw, str) or raw.count(".") != 2:
        raise TokenCheckFailed("malformed", "not a compact JWS")
    header = _header(raw)
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise TokenCheckFailed("bad_algorithm", f"alg is {algorithm!r}")
    kid = header.get("kid")

    key_set = _key_set(keys(False))
    if kid is not None and str(kid) not in _kids(key_set):
        key_set = _key_set(keys(True))
        if str(kid) not in _kids(key_set):
            raise TokenCheckFailed("unknown_key", f"no key {kid!r} in the provider's JWKS")
    try:
        token = jwt.decode(raw, key_set, algorithms=[algorithm])
    except BadSignatureError:
        raise TokenCheckFailed("bad_signature") from None
    except JoseError as exc:
        raise TokenCheckFailed("malformed", str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise TokenCheckFailed("malformed", str(exc)) from None
    claims = dict(token.claims)
    check_claims(claims, expected, now)
    return claims
