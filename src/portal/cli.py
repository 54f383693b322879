"""The ``portal`` command for operators: a thin wrapper of Django's management commands.

Configuration is validated before Django starts, so a bad variable stops start-up with one
line naming it (``portal: SMTP_TLS: expected one of starttls, tls, none, got 'ssl'``)
instead of a traceback. Help needs no configuration: ``portal``, ``portal --help`` and
``portal help serve`` work in a shell where nothing is set yet.
"""

from __future__ import annotations

import os
import sys

HELP_WORDS = {"help", "--help", "-h", "--version"}


def asks_for_help(args: list[str]) -> bool:
    """Say whether ``portal ARGS`` only prints help (or the version), running nothing."""
    return not args or args[0] in HELP_WORDS or any(a in ("--help", "-h") for a in args)


def _configure_for_help() -> None:
    """Let settings load from the documented defaults: this process only prints help.

    Every portal variable is removed from this process's environment and development mode
    is turned on, so the command list and each command's options are shown as they would
    be on a fresh machine. Nothing is served, sent or stored with these settings.
    """
    from portal.config.env import VARIABLES

    for variable in VARIABLES:
        os.environ.pop(variable.name, None)
    os.environ["PORTAL_DEBUG"] = "true"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.config.settings")
    from portal.config.env import ConfigError, load

    try:
        load()
    except ConfigError as exc:
        if not asks_for_help(argv[1:]):
            print(f"portal: configuration error: {exc}", file=sys.stderr)
            return 2
        _configure_for_help()
        print(f"portal: note: the configuration is not complete ({exc}); commands will "
              "not start until it is. Help follows.", file=sys.stderr)
    from django.core.management import execute_from_command_line

    argv[0] = "portal"
    execute_from_command_line(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
