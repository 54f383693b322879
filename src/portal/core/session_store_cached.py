"""SESSION_ENGINE for Redis in front of database sessions: see ``session_store``."""

from portal.core.session_store import CachedSessionStore as SessionStore

__all__ = ["SessionStore"]
