"""The session engines: Django's database sessions, and with Redis a cache in front of them.

``SessionStore`` (the embedded default) keeps sessions in the database; ``cached`` (used
when ``REDIS_URL`` is set, decision 0020) reads them from Redis and writes them to both,
so a signed-in page costs no session query while the database stays the record: a Redis
restart signs nobody out, and the "Your sessions" page still lists rows it can check.

Both differ from Django's engines in three ways, each worth a statement per sign-in:

- a new key is not looked up before it is used: the row is inserted with
  ``must_create``, which the primary key makes fail on the (2^-165) chance of a clash,
  and Django then draws another key;
- a session saved during the request (a sign-in saves it inside its transaction) and not
  changed since is not written again when the response leaves;
- ``cycle_key`` (every sign-in, to defeat session fixation) makes the new key when the
  session is next saved, by renaming the stored row: one UPDATE with everything in it,
  instead of a DELETE of the old row, an INSERT of an empty new one and an UPDATE.

Ending a session must go through ``end(key)``: with the cache in front, deleting only the
database row would leave a working copy in Redis.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends import cached_db, db
from django.db import router, transaction
from django.utils.crypto import get_random_string

from portal.core.clock import now

VALID_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


class _Fewer:
    """The changes above, for either engine."""

    _session_key: str | None
    _session_cache: dict[str, Any]
    modified: bool
    _retired_key: str | None = None
    _saved: dict[str, Any] | None = None

    def _get_new_session_key(self) -> str:
        return get_random_string(32, VALID_KEY_CHARS)

    def cycle_key(self) -> None:
        """Give the session a new key; the old one stops existing at the next save.

        The save renames the stored row (one UPDATE of its key and data) instead of
        deleting it and inserting another. Until then the old row holds what it held
        before the sign-in (nothing that signs anyone in), and a sign-in that never saves
        its session never happened.
        """
        data = self._session  # type: ignore[attr-defined]
        self._retired_key = self.session_key  # type: ignore[attr-defined]
        self._session_key = None
        self._session_cache = data
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        data = dict(self._get_session(no_load=must_create))  # type: ignore[attr-defined]
        if (not must_create and self.session_key is not None  # type: ignore[attr-defined]
                and data == self._saved):
            return  # saved already in this request, unchanged since (see module doc)
        retired, self._retired_key = self._retired_key, None
        if not (retired and self.session_key is None  # type: ignore[attr-defined]
                and self._rename(retired)):
            super().save(must_create)  # type: ignore[misc]
        self._saved = data

    def _rename(self, retired: str) -> bool:
        """Move the stored session ``retired`` to a fresh key with the current data."""
        new_key = self._get_new_session_key()
        data = self._get_session(no_load=True)  # type: ignore[attr-defined]
        model = self.model  # type: ignore[attr-defined]
        using = router.db_for_write(model)
        with transaction.atomic(using=using, savepoint=False):  # one statement: no savepoint
            renamed = model.objects.using(using).filter(session_key=retired).update(
                session_key=new_key, session_data=self.encode(data),  # type: ignore[attr-defined]
                expire_date=self.get_expiry_date())  # type: ignore[attr-defined]
        if renamed != 1:
            return False  # the old row was gone already: a plain insert makes the new one
        self._session_key = new_key
        self._after_rename(retired, data)
        return True

    def _after_rename(self, retired: str, data: dict[str, Any]) -> None:
        """Hook for the cached engine: move the cached copy too."""


class SessionStore(_Fewer, db.SessionStore):
    """Database sessions (SESSION_ENGINE ``portal.core.session_store``)."""


class CachedSessionStore(_Fewer, cached_db.SessionStore):
    """Redis in front of database sessions (SESSION_ENGINE ``portal.core.session_store_cached``)."""

    def _after_rename(self, retired: str, data: dict[str, Any]) -> None:
        self._cache.delete(self.cache_key_prefix + retired)  # type: ignore[attr-defined]
        self._cache.set(self.cache_key, data, self.get_expiry_age())  # type: ignore[attr-defined]


def store(session_key: str | None = None) -> Any:
    """Return a session store of the configured engine for ``session_key``."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=session_key)


def end(*session_keys: str) -> None:
    """Delete these sessions wherever the engine keeps them: the database rows in one
    statement, and with Redis in front the cached copies too (or they would still work)."""
    from django.contrib.sessions.models import Session

    keys = [key for key in session_keys if key]
    if not keys:
        return
    Session.objects.filter(session_key__in=keys).delete()
    sample = store()
    if isinstance(sample, cached_db.SessionStore):
        sample._cache.delete_many(  # type: ignore[attr-defined]
            [sample.cache_key_prefix + key for key in keys])


def live(session_keys: list[str]) -> set[str]:
    """Return which of ``session_keys`` are still stored and unexpired."""
    from django.contrib.sessions.models import Session

    # The database is the record for both engines: one query, whatever the count.
    return set(Session.objects.filter(session_key__in=session_keys, expire_date__gt=now())
               .values_list("session_key", flat=True))
