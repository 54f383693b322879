"""Developer tooling: ``portal dev``, ``portal demo``, the mail catcher and /dev/mail/.

Installed only in development (``PORTAL_DEBUG=true``, see ``portal.config.settings``), so a
production deployment has neither these commands nor the URL.
"""
