"""Run the ``portal`` command in a clean environment, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PORTAL = Path(sys.executable).with_name("portal")
PROPER_KEY = "k" * 50
# What production mode needs at the least: a real key and an https:// public address.
PRODUCTION = {"PORTAL_SECRET_KEY": PROPER_KEY, "PORTAL_BASE_URL": "https://portal.example.com"}

# What the test process carries (pytest-django's settings module, settings_test's defaults)
# must not leak into a subprocess that is meant to see only what the test gives it.
_INHERITED = ("PORTAL_", "DATABASE_URL", "REDIS_URL", "SMTP_", "DKIM_", "GOOGLE_", "MICROSOFT_",
              "MAGIC_LINK_", "SESSION_", "DJANGO_", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS",
              "SIGNIN_")


def clean_env(**variables: str) -> dict[str, str]:
    """Return ``os.environ`` without any portal variable, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED)}
    env.update(variables)
    return env


def run_portal(*args: str, timeout: float = 120,
               **variables: str) -> subprocess.CompletedProcess[str]:
    """Run ``portal ARGS`` with only ``variables`` set; return its exit code and output."""
    return subprocess.run([str(PORTAL), *args], env=clean_env(**variables),
                          capture_output=True, text=True, timeout=timeout, check=False)
