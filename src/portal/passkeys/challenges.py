"""WebAuthn challenges: random, bound to the session, single-use, short-lived.

The challenge is what makes an assertion fresh: the authenticator signs it, so an
assertion recorded once (by malware, a log, a proxy) is worthless afterwards. That holds
only if each challenge is accepted once, by the browser it was issued to, for a short time:

- stored in the server-side session of the browser that asked, never in a cookie or the
  page alone, so another browser cannot answer it;
- taken out of the session by the first attempt to use it, whether that attempt succeeds
  or not, so one challenge is one try;
- refused once ``LIFETIME`` has passed since it was issued.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

from django.http import HttpRequest

from portal.core.clock import now
from portal.passkeys.errors import ChallengeExpired, ChallengeMissing

LIFETIME = timedelta(minutes=5)
SESSION_KEY = "passkey_challenges"
PURPOSES = ("register", "signin")


def issue(request: HttpRequest, purpose: str) -> bytes:
    """Return a new 32-byte challenge for ``purpose``; it replaces any earlier one."""
    assert purpose in PURPOSES
    challenge = secrets.token_bytes(32)
    waiting = dict(request.session.get(SESSION_KEY) or {})
    waiting[purpose] = {"c": base64.urlsafe_b64encode(challenge).decode(),
                        "at": now().timestamp()}
    request.session[SESSION_KEY] = waiting
    return challenge


def consume(request: HttpRequest, purpose: str) -> bytes:
    """Take the waiting challenge for ``purpose`` out of the session and return it.

    Raises ``ChallengeMissing`` when there is none (never issued, or used already) and
    ``ChallengeExpired`` when it is older than ``LIFETIME``; either way it is gone.
    """
    waiting = dict(request.session.get(SESSION_KEY) or {})
    entry = waiting.pop(purpose, None)
    request.session[SESSION_KEY] = waiting
    if not isinstance(entry, dict):
        raise ChallengeMissing()
    try:
        challenge = base64.urlsafe_b64decode(str(entry["c"]))
        issued = float(entry["at"])
    except (KeyError, TypeError, ValueError):
        raise ChallengeMissing() from None
    if now().timestamp() - issued > LIFETIME.total_seconds():
        raise ChallengeExpired()
    return challenge
