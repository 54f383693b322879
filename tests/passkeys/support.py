"""Give a test's staff session what the admin requires: a sign-in with a passkey.

Tests about the admin's pages (not about passkeys) use this instead of a WebAuthn ceremony:
the person gets a stored passkey and the session says it was signed in with that passkey,
exactly what ``portal.passkeys.flows.sign_in`` leaves behind. The passkey rule itself is
tested with real ceremonies in ``tests/passkeys``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.test import Client

from portal.core import session_store
from portal.core.clock import now
from portal.passkeys.flows import METHOD, SESSION_PASSKEY_KEY
from portal.passkeys.models import Passkey
from portal.signin.sessions import SESSION_METHOD_KEY, SESSION_STARTED_KEY

BACKEND = "portal.accounts.backends.PasswordlessBackend"


def _passkey_of(user: Any) -> Passkey:
    passkey = Passkey.objects.filter(user=user).first()
    if passkey is None:
        passkey = Passkey.objects.create(
            user=user, credential_id=f"test-{user.pk}", public_key=b"test", name="Test key")
    return passkey


def mark_passkey_session(session_key: str, user: Any) -> None:
    """Make the stored session ``session_key`` of ``user`` a passkey session."""
    store = session_store.store(session_key)  # the configured engine: Redis copy included
    store[SESSION_METHOD_KEY] = METHOD
    store.setdefault(SESSION_STARTED_KEY, now().timestamp())
    store[SESSION_PASSKEY_KEY] = _passkey_of(user).pk
    store.save()


def passkey_client(user: Any, client: Client | None = None) -> Client:
    """Return a client signed in as ``user`` as if with a passkey."""
    client = client or Client()
    client.force_login(user, backend=BACKEND)
    mark_passkey_session(client.cookies[settings.SESSION_COOKIE_NAME].value, user)
    return client


def passkey_browser(page: Any, user: Any) -> None:
    """Make the signed-in Playwright ``page``'s session a passkey session of ``user``."""
    (cookie,) = [c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME]
    mark_passkey_session(cookie["value"], user)
