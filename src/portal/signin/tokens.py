"""Link secrets and short codes: generate, hash, recognise. Pure functions; no requests.

A link secret is 256 bits from ``secrets`` (rule 3). Only its SHA-256 is stored, so a copy
of the database yields no usable link. A plain hash (not a slow one) is right here: the
input is uniformly random and 256 bits long, so there is nothing to brute-force.

A short code (rule 11) is the opposite case: a million possibilities, so its plain hash is
reversed offline in well under a second. It is stored only as an HMAC under a key derived
from ``SECRET_KEY``: a copy of the database without the settings yields nothing to try.
The request's id is part of the HMAC input, so equal codes of two requests never share a
stored value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.utils.crypto import salted_hmac

TOKEN_BYTES = 32  # 256 bits
# token_urlsafe(32) yields 43 characters of the URL-safe base64 alphabet.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")

CODE_DIGITS = 6
# Only ASCII digits: str.isdigit() and \d also accept other scripts' digits.
_CODE_SHAPE = re.compile(r"^[0-9]{6}$")
# The purpose string keeps this key apart from every other use of SECRET_KEY.
_CODE_KEY_SALT = "portal.signin.tokens.code"


def generate_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def looks_like_token(text: str) -> bool:
    """Reject anything that cannot be a token before it reaches the database."""
    return bool(_TOKEN_SHAPE.match(text))


def same_hash(token: str, expected_hash: str) -> bool:
    return bool(expected_hash) and hmac.compare_digest(hash_token(token), expected_hash)


def generate_code() -> str:
    """Return a uniformly random six-digit code, zero-padded ("004217")."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hmac_code(sign_in_id: int, code: str) -> str:
    """Return the stored form of ``code`` for the sign-in request ``sign_in_id``."""
    return salted_hmac(_CODE_KEY_SALT, f"{sign_in_id}:{code}", algorithm="sha256").hexdigest()


def clean_code(text: str) -> str | None:
    """Return the six digits typed, allowing spaces ("123 456"), or None if it is not a code."""
    digits = "".join(text.split())[:64]
    return digits if _CODE_SHAPE.match(digits) else None


def same_code(sign_in_id: int, code: str, expected_hmac: str) -> bool:
    """Compare in constant time; an empty ``expected_hmac`` (no code minted) never matches."""
    return bool(expected_hmac) and hmac.compare_digest(hmac_code(sign_in_id, code),
                                                       expected_hmac)
