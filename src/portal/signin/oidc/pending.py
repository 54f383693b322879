"""The sign-ins this browser started with Google / Microsoft, kept in a signed cookie.

Between the button and the provider's callback the portal must remember, for this browser
alone, the ``state`` it sent, the ``nonce`` the ID token must carry, the PKCE verifier,
where the person was going and when they started. They live in one cookie, not in the
server-side session, so that a cookie-less GET of the start URL stores nothing on the
server: a flood of such GETs used to write one session row each. The cookie is signed
(``SECRET_KEY``, a salt of its own), ``HttpOnly``, ``SameSite=Lax``, scoped to
``/signin/oidc/`` and lives ten minutes; in production it is ``Secure`` and its name
carries the ``__Secure-`` prefix (``__Host-`` would need ``Path=/``, see
docs/decisions/0009-oidc-pending-sign-in-cookie.md).

What the session used to guarantee, and how the cookie keeps it:

- **Bound to this browser.** Only this browser has the cookie, and nobody without
  ``SECRET_KEY`` can make one: a state pushed into someone else's callback (login CSRF)
  finds nothing.
- **Single use.** The callback takes the entry out of the cookie it sends back, so a
  reload finds nothing; and it remembers the state as used (``mark_used``, an atomic
  ``cache.add``) for as long as the state could still be valid, so a replay with a copy of
  the old cookie finds nothing either. That mark is the only thing written, and only at a
  callback that carries a state this browser really started.
- **Several tabs.** The cookie holds up to ``PENDING_MAX`` sign-ins; a new one pushes out
  the oldest, and so does the 4 kB a browser keeps per cookie.
- **Too slow is refused.** The start time is inside the signed ``state`` itself, so even
  when the cookie has expired the callback can say "took too long" instead of "started in
  another browser".
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from portal.core.clock import now

# A sign-in left at the provider's page longer than this must start again; the cookie
# lives exactly as long after its last change.
PENDING_MAX_AGE = 600
# Several tabs may start a sign-in at once; keep only the newest few.
PENDING_MAX = 5
COOKIE_PATH = "/signin/oidc/"
# Browsers keep a cookie of up to 4096 bytes, name and attributes included.
COOKIE_MAX_VALUE = 3600
_COOKIE_SALT = "portal.signin.oidc.pending"
_STATE_SALT = "portal.signin.oidc.state"
_USED_PREFIX = "signin:oidc:used:"


def cookie_name() -> str:
    """Return the cookie's name: the setting, with ``__Secure-`` wherever it is Secure.

    The prefix makes browsers refuse the cookie unless it is set Secure over HTTPS, so a
    plain-HTTP page (or a network attacker on one) cannot plant a pending sign-in.
    """
    base = settings.SIGNIN_OIDC_COOKIE
    return f"__Secure-{base}" if settings.SESSION_COOKIE_SECURE else base


def _state_signer() -> signing.Signer:
    return signing.Signer(salt=_STATE_SALT, sep=".")


def new_state(started: int) -> str:
    """Return a fresh, unguessable ``state`` that carries its own (signed) start time."""
    return _state_signer().sign(f"{secrets.token_urlsafe(32)}.{started}")


def started_at(state: str) -> int | None:
    """Return when the sign-in of ``state`` started, or None if the portal did not issue it."""
    try:
        value = _state_signer().unsign(state)
    except signing.BadSignature:
        return None
    stamp = value.rpartition(".")[2]
    return int(stamp) if stamp.isdigit() else None


def too_old(started: float) -> bool:
    """Say whether a sign-in that started at ``started`` waited too long to finish."""
    return now().timestamp() - started > PENDING_MAX_AGE


@dataclass(frozen=True)
class PendingSignIn:
    """One sign-in this browser started and has not finished."""

    provider: str
    state: str
    nonce: str
    verifier: str  # the PKCE code verifier; the provider only ever sees its S256 hash
    next_url: str

    @property
    def started(self) -> int:
        started = started_at(self.state)
        assert started is not None  # every entry's state was signed by new_state
        return started

    def as_list(self) -> list[str]:
        return [self.provider, self.nonce, self.verifier, self.next_url]


class PendingSignIns:
    """This browser's pending sign-ins: read from its cookie, changed, written back."""

    def __init__(self, entries: dict[str, PendingSignIn] | None = None, *,
                 changed: bool = False) -> None:
        self.entries = dict(entries or {})
        self.changed = changed

    @classmethod
    def read(cls, request: HttpRequest) -> PendingSignIns:
        """Return the sign-ins in this request's cookie; a forged or broken one counts as none."""
        raw = request.COOKIES.get(cookie_name())
        if not raw:
            return cls()
        try:
            data = signing.loads(raw, salt=_COOKIE_SALT)
        except (signing.BadSignature, ValueError):
            return cls(changed=True)  # written back empty: the browser drops it
        if not isinstance(data, dict):
            return cls(changed=True)
        entries: dict[str, PendingSignIn] = {}
        for state, value in data.items():
            if (isinstance(value, list) and len(value) == 4
                    and all(isinstance(v, str) for v in value)
                    and started_at(state) is not None):
                entries[state] = PendingSignIn(value[0], state, value[1], value[2], value[3])
        return cls(entries, changed=len(entries) != len(data))

    def start(self, provider: str, next_url: str) -> PendingSignIn:
        """Begin a sign-in with ``provider``: fresh state, nonce and PKCE verifier."""
        entry = PendingSignIn(
            provider=provider, state=new_state(int(now().timestamp())),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),  # 86 characters: within PKCE's 43..128
            next_url=next_url)
        # Dicts keep insertion order, and an entry is only ever added: oldest first.
        kept = [e for e in self.entries.values() if not too_old(e.started)]
        kept = [*kept[-(PENDING_MAX - 1):], entry]
        while len(kept) > 1 and len(self._encode(kept)) > COOKIE_MAX_VALUE:
            kept.pop(0)  # long `next` paths: fewer tabs rather than a cookie the browser drops
        self.entries = {e.state: e for e in kept}
        self.changed = True
        return entry

    def take(self, state: str) -> PendingSignIn | None:
        """Remove and return the sign-in that sent ``state``, if this browser started one."""
        entry = self.entries.pop(state, None) if state else None
        if entry is not None:
            self.changed = True
        return entry

    @staticmethod
    def _encode(entries: list[PendingSignIn]) -> str:
        payload: dict[str, Any] = {e.state: e.as_list() for e in entries}
        return signing.dumps(payload, salt=_COOKIE_SALT, compress=True)

    def write(self, response: HttpResponse) -> None:
        """Send the sign-ins back in ``response``'s cookie, if anything changed."""
        if not self.changed:
            return
        if not self.entries:
            response.delete_cookie(cookie_name(), path=COOKIE_PATH, samesite="Lax")
            return
        response.set_cookie(cookie_name(), self._encode(list(self.entries.values())),
                            max_age=PENDING_MAX_AGE, path=COOKIE_PATH, httponly=True,
                            samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)


def mark_used(state: str) -> bool:
    """Record ``state`` as used; return False if it already was (a replayed callback).

    ``cache.add`` writes only if the key is absent, atomically (Redis ``SET NX``; the
    database cache's primary key), so two callbacks racing with one state cannot both
    win. The mark outlives every moment at which the state could still be accepted.
    """
    key = _USED_PREFIX + hashlib.sha256(state.encode()).hexdigest()[:40]
    return bool(cache.add(key, 1, timeout=PENDING_MAX_AGE + 60))
