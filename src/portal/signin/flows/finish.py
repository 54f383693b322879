"""The one exit of every way in: start the session, record it, close older doors.

Every sign-in method (email link, one-time code, Google, Microsoft, and each one added
later) ends in ``finish_sign_in``, so the rules about sessions hold for all of them alike:

- the session key changes exactly once, so a key planted in the browser before sign-in
  (session fixation) is worthless afterwards, and a second sign-in on a signed-in browser
  is a new session of its own;
- the browser's previous "Your sessions" row, if it had one, is marked ended;
- every email link of the person still open is revoked (rule 4: once someone is in, by
  any method, older emails are dead);
- one audit row says who signed in, by which method, from where;
- the browser is remembered as one that signed in as this address (``devices``), which
  gives it a rate-limit allowance of its own;
- ``signals.signed_in`` is sent, in the transaction, with the browser's device id (the
  new-browser notice of ``portal.notifications`` listens).

Transaction policy: all of the above is one transaction. A caller that consumes
something first (the email link's conditional UPDATE) calls this inside its own
``transaction.atomic`` block, so the consumption and the session commit or vanish
together. Nothing here talks to the network: callers finish their calls to identity
providers before calling it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib import auth
from django.db import transaction
from django.http import HttpRequest

from portal.accounts.models import User
from portal.audit.models import AuthEvent
from portal.audit.services import event as audit_event
from portal.audit.services import record_events
from portal.audit.tags import Tag
from portal.core.clock import now
from portal.core.http import client_ip, user_agent
from portal.signin import devices, signals
from portal.signin.models import SignInRequest, UserSession
from portal.signin.sessions import BACKEND, SESSION_METHOD_KEY, SESSION_STARTED_KEY


def finish_sign_in(request: HttpRequest, user: User, method: str, *, event: Tag,
                   also: Sequence[AuthEvent] = (), **detail: Any) -> UserSession:
    """Sign ``user`` in on this browser by ``method``; return the new session's row.

    ``event`` is the audit tag of the success (``signin:link:redeemed``,
    ``signin:oidc:succeeded``, …); ``detail`` goes into that row. ``also`` are audit rows
    the caller built (``audit.services.event``) to be written with it, in one statement.
    ``user`` should come with its organization loaded (the audit row names it).
    """
    started = now()
    # Inside a caller's transaction (the link's consumption) this block is part of it, not
    # a savepoint: nothing here is rolled back alone, and each savepoint is two round trips.
    with transaction.atomic(savepoint=False):
        previous_key = request.session.session_key
        was_signed_in = auth.SESSION_KEY in request.session
        if was_signed_in:
            # auth.login keeps the key when the same person signs in again; a fresh sign-in
            # must never reuse one. Flushing first leaves login exactly one key to make.
            request.session.flush()
        auth.login(request, user, backend=BACKEND)
        if was_signed_in and previous_key:
            # That key's row is gone from the session table; its listing ends with it.
            UserSession.objects.filter(session_key=previous_key,
                                       ended_at__isnull=True).update(ended_at=started)
        request.session[SESSION_STARTED_KEY] = started.timestamp()
        request.session[SESSION_METHOD_KEY] = method
        # Saved here, not at the end of the response: the session that carries the login
        # commits with its "Your sessions" row and its audit row, or not at all. Unchanged
        # since, it is not written again at the end (``portal.core.session_store``).
        request.session.save()
        SignInRequest.objects.revoke_open(user.email, started)
        device = devices.remember_device(request, user.email)
        record_events(*also, audit_event(event, request=request, user=user, method=method,
                                         **detail))
        signals.signed_in.send(sender=User, request=request, user=user, method=method,
                               device=device)
        return UserSession.objects.create(
            user=user, session_key=request.session.session_key or "", method=method,
            ip=client_ip(request) or None, user_agent=user_agent(request),
            created_at=started, last_seen_at=started)
