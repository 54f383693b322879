"""Link secrets, short codes and browser bindings: generate, hash, recognise. Pure functions.

A link secret is 256 bits from ``secrets`` (rule 3). Only its SHA-256 is stored, so a copy
of the database yields no usable link. A plain hash (not a slow one) is right here: the
input is uniformly random and 256 bits long, so there is nothing to brute-force.

A short code (rule 11) is the opposite case: a million possibilities, so its plain hash is
reversed offline in well under a second. It is stored only as an HMAC under a key derived
from ``SECRET_KEY``: a copy of the database without the settings yields nothing to try.
The request's id is part of the HMAC input, so equal codes of two requests never share a
stored value.

An approval number (rule 11, second half) is two digits shown only on the asking browser's
"Check your inbox" page. It is no secret from whoever sits at that screen; its job is to
make the person approving on another device prove they can see that screen. It is typed,
not picked from a list, so a guess is one chance in a hundred.

A browser binding (rule 6) is a random value kept in an HttpOnly cookie of the browser
that asked for a link; the request stores only its SHA-256. Holding it is what lets that
browser sign in with one click, and use the short code.
"""

from __future__ import annotations

import base64
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

NUMBER_DIGITS = 2
# One or two ASCII digits: "7" is the "07" on the screen.
_NUMBER_SHAPE = re.compile(r"^[0-9]{1,2}$")


def generate_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def looks_like_token(text: str) -> bool:
    """Reject anything that cannot be a token before it reaches the database."""
    return bool(_TOKEN_SHAPE.match(text))


def same_hash(token: str, expected_hash: str) -> bool:
    return bool(expected_hash) and hmac.compare_digest(hash_token(token), expected_hash)


# --- Browser bindings (rule 6) ----------------------------------------------------------

def generate_binding() -> str:
    """Return a new browser binding: as strong as a link secret, and shaped like one."""
    return generate_token()


def clean_binding(value: str | None) -> str:
    """Return ``value`` if it has a binding's shape, else "" (a cookie is client input)."""
    return value if value and looks_like_token(value) else ""


def hash_binding(binding: str) -> str:
    """Return the stored form of ``binding``; "" for no binding."""
    return hashlib.sha256(binding.encode()).hexdigest() if binding else ""


def holds_binding(binding: str, binding_hash: str) -> bool:
    """True when ``binding`` is the one whose hash is stored; compared in constant time."""
    return (bool(binding) and bool(binding_hash)
            and hmac.compare_digest(hash_binding(binding), binding_hash))


# --- Short codes (rule 11) --------------------------------------------------------------

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


# Reproducible secrets (decision 0008). A retried sign-in email must carry the link and code
# of the first attempt: if that one did reach the inbox after all (the relay accepted it and
# the worker died before recording so), both copies then work, rather than one being dead.
# So the worker stores a random seed at the first render and derives both from it. The seed
# alone is worth nothing: each derivation is an HMAC under a key derived from SECRET_KEY with
# its own purpose string, so a copy of the database without the settings yields no link and
# no code (the argument of decision 0001 and of hmac_code). Lookups are unchanged: the
# SHA-256 of the derived secret and the HMAC of the derived code are stored as before.
SEED_BYTES = 32  # 256 bits, like the secret it stands for
_SEED_SHAPE = re.compile(r"^[0-9a-f]{64}$")
_LINK_TOKEN_SALT = "portal.signin.tokens.link-token"  # noqa: S105 - a purpose, not a secret
_LINK_CODE_SALT = "portal.signin.tokens.link-code"


def generate_seed() -> str:
    """Return a fresh random seed for one sign-in request (64 hex digits)."""
    return secrets.token_hex(SEED_BYTES)


def _from_seed(purpose: str, seed: str) -> bytes:
    # An empty or malformed seed would give every such request the same secret: refuse it.
    if not _SEED_SHAPE.match(seed):
        raise ValueError("not a link seed")
    return salted_hmac(purpose, seed, algorithm="sha256").digest()


def token_from_seed(seed: str) -> str:
    """Return the link secret of ``seed``: 256 bits, shaped like ``generate_token``'s."""
    return base64.urlsafe_b64encode(_from_seed(_LINK_TOKEN_SALT, seed)).rstrip(b"=").decode()


def code_from_seed(seed: str) -> str:
    """Return the six-digit code of ``seed`` ("004217").

    256 bits reduced modulo a million: the bias is below 10**-70, nothing to exploit.
    """
    number = int.from_bytes(_from_seed(_LINK_CODE_SALT, seed), "big")
    return f"{number % 10**CODE_DIGITS:0{CODE_DIGITS}d}"


# --- Approval numbers (rule 11, second half) ------------------------------------------

def generate_number() -> str:
    """Return a uniformly random two-digit approval number, zero-padded ("07")."""
    return f"{secrets.randbelow(10**NUMBER_DIGITS):0{NUMBER_DIGITS}d}"


def clean_number(text: str) -> str | None:
    """Return the number typed as two digits ("7" → "07"), or None if it is not one."""
    digits = "".join(text.split())[:16]
    return f"{int(digits):0{NUMBER_DIGITS}d}" if _NUMBER_SHAPE.match(digits) else None


def same_number(typed: str, expected: str) -> bool:
    """Compare in constant time; an empty ``expected`` (a request without one) never matches."""
    return bool(expected) and hmac.compare_digest(typed.encode(), expected.encode())
