"""Link secrets: generate, hash, recognise. Pure functions; they never see a request.

A link secret is 256 bits from ``secrets`` (rule 3). Only its SHA-256 is stored, so a copy
of the database yields no usable link. A plain hash (not a slow one) is right here: the
input is uniformly random and 256 bits long, so there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

TOKEN_BYTES = 32  # 256 bits
# token_urlsafe(32) yields 43 characters of the URL-safe base64 alphabet.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def generate_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def looks_like_token(text: str) -> bool:
    """Reject anything that cannot be a token before it reaches the database."""
    return bool(_TOKEN_SHAPE.match(text))


def same_hash(token: str, expected_hash: str) -> bool:
    return bool(expected_hash) and hmac.compare_digest(hash_token(token), expected_hash)
