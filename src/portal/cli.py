"""The ``portal`` command for operators: a thin wrapper of Django's management commands.

Configuration is validated before Django starts, so a bad variable stops start-up with one
line naming it (``portal: SMTP_TLS: expected one of starttls, tls, none, got 'ssl'``)
instead of a traceback.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.config.settings")
    from portal.config.env import ConfigError, load

    try:
        load()
    except ConfigError as exc:
        print(f"portal: configuration error: {exc}", file=sys.stderr)
        return 2
    from django.core.management import execute_from_command_line

    argv[0] = "portal"
    execute_from_command_line(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
