"""Django's PostgreSQL backend, with the connection health check paid only after idling.

``DATABASES["default"]["ENGINE"] = "portal.core.postgresql"`` (``portal.config.env`` sets it
for a ``postgres://`` URL); the class is in ``base``, where Django looks for it.
"""
