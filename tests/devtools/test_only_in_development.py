"""Developer tooling exists only in development: production has no /dev/mail/, dev or demo.

The test suite itself installs the app (settings_test), so these checks run ``portal`` as a
real process with nothing but the variables an operator would set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.config.portal_cli import PRODUCTION, run_portal

DEVTOOLS_COMMANDS = {"dev", "demo", "mailcatcher"}

# What a running portal offers: the app, the /dev/mail/ URLs, the development commands.
PROBE = """
import json
from django.apps import apps
from django.core.management import get_commands
from django.urls import Resolver404, resolve

def routed(path):
    try:
        resolve(path)
    except Resolver404:
        return False
    return True

print(json.dumps({"app": apps.is_installed("portal.devtools"),
                  "dev_mail": routed("/dev/mail/"),
                  "message": routed("/dev/mail/1700000000.M1P1Q1.host/"),
                  "commands": sorted(set(get_commands()) & {"dev", "demo", "mailcatcher"})}))
"""


def _probe(tmp_path: Path, **variables: str) -> dict[str, object]:
    result = run_portal("shell", "-c", PROBE, PORTAL_VAR_DIR=str(tmp_path),
                        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}", **variables)
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_production_mode_has_no_dev_mail_url_and_no_development_commands(
        tmp_path: Path) -> None:
    assert _probe(tmp_path, **PRODUCTION) == {
        "app": False, "dev_mail": False, "message": False, "commands": []}


def test_development_mode_has_the_dev_mail_url_and_the_development_commands(
        tmp_path: Path) -> None:
    # The same probe finds them in development, so the production check above can fail.
    assert _probe(tmp_path, PORTAL_DEBUG="true") == {
        "app": True, "dev_mail": True, "message": True, "commands": sorted(DEVTOOLS_COMMANDS)}


@pytest.mark.parametrize("command", sorted(DEVTOOLS_COMMANDS))
def test_production_portal_does_not_know_the_development_commands(
        tmp_path: Path, command: str) -> None:
    # --help: were the command there, it would print its usage and stop, changing nothing.
    result = run_portal(command, "--help", **PRODUCTION,
                        PORTAL_VAR_DIR=str(tmp_path),
                        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}")
    assert result.returncode == 1
    assert f"Unknown command: '{command}'" in result.stderr
