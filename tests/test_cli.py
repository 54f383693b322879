"""The operator's ``portal`` command, run as a real process against a fresh SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.config.portal_cli import PRODUCTION, run_portal


@pytest.fixture(scope="module")
def portal_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Production-mode variables for a database that `portal migrate` has prepared."""
    folder = tmp_path_factory.mktemp("cli")
    variables = {**PRODUCTION, "PORTAL_VAR_DIR": str(folder),
                 "DATABASE_URL": f"sqlite:///{folder / 'portal.sqlite3'}"}
    result = run_portal("migrate", "--no-input", **variables)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return variables


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def _database(portal_env: dict[str, str]) -> sqlite3.Connection:
    return sqlite3.connect(portal_env["DATABASE_URL"].removeprefix("sqlite:///"))


def test_addorg_and_adduser_print_friendly_lines(portal_env: dict[str, str]) -> None:
    org = run_portal("addorg", "Northwind Logistics", "--domain", "Northwind.example",
                     "--auto-join", **portal_env)
    assert org.returncode == 0, org.stderr
    assert _one_line(org.stdout) == ("Created organization Northwind Logistics "
                                     "(domains: Northwind.example; auto-join: on).")

    user = run_portal("adduser", " Alice@Northwind.example ", "--org", "Northwind Logistics",
                      "--admin", "--name", "Alice Smith", **portal_env)
    assert user.returncode == 0, user.stderr
    assert _one_line(user.stdout) == (
        "alice@northwind.example can now sign in to Northwind Logistics.")

    with _database(portal_env) as db:
        rows = db.execute(
            "SELECT u.email, u.full_name, u.password, m.role, d.domain, d.verified "
            "FROM accounts_user u JOIN accounts_membership m ON m.user_id = u.id "
            "JOIN accounts_organizationdomain d ON d.organization_id = m.organization_id "
            "WHERE u.email = 'alice@northwind.example'").fetchall()
    (email, name, password, role, domain, verified), = rows
    assert (email, name, role, domain, verified) == (
        "alice@northwind.example", "Alice Smith", "admin", "northwind.example", 1)
    assert password.startswith("!")  # unusable: nobody signs in with a password


def test_adduser_staff_needs_no_organization(portal_env: dict[str, str]) -> None:
    result = run_portal("adduser", "ops@cloudsentry.example", "--staff", **portal_env)
    assert result.returncode == 0, result.stderr
    first, _, rest = result.stdout.partition("\n")
    assert first == "ops@cloudsentry.example can now sign in as staff."
    # Staff need a passkey for the admin: the command prints the way to add the first one.
    assert "one-time enrolment link" in rest and "/passkeys/enrol/" in rest


def test_adduser_for_an_unknown_org_fails_with_one_line(portal_env: dict[str, str]) -> None:
    result = run_portal("adduser", "bob@contoso.example", "--org", "Contoso", **portal_env)
    assert result.returncode == 1
    line = _one_line(result.stderr)
    assert line.startswith("CommandError: No organization named 'Contoso'.")
    assert "portal addorg" in line
    assert "Traceback" not in result.stderr
    with _database(portal_env) as db:
        found = db.execute("SELECT count(*) FROM accounts_user WHERE email = ?",
                           ["bob@contoso.example"]).fetchone()
    assert found == (0,)


@pytest.mark.parametrize(("args", "message"), [
    (["not-an-address", "--staff"], "CommandError: Enter an email address like name@company.com."),
    (["carol@contoso.example"], "CommandError: Give --org NAME (or --staff for Cloud Sentry "
                                "staff)."),
])
def test_adduser_refuses_bad_input_with_one_line(portal_env: dict[str, str], args: list[str],
                                                 message: str) -> None:
    result = run_portal("adduser", *args, **portal_env)
    assert result.returncode == 1
    assert _one_line(result.stderr) == message


def test_addorg_twice_fails_with_one_line(portal_env: dict[str, str]) -> None:
    first = run_portal("addorg", "Fabrikam", "--domain", "fabrikam.example", **portal_env)
    assert first.returncode == 0, first.stderr
    assert "auto-join: off" in first.stdout
    again = run_portal("addorg", "Fabrikam", **portal_env)
    assert again.returncode == 1
    assert _one_line(again.stderr) == "CommandError: An organization named 'Fabrikam' already exists."


def test_bad_configuration_stops_adduser_before_django_starts(tmp_path: Path) -> None:
    result = run_portal("adduser", "x@example.com", "--staff", **PRODUCTION,
                        DATABASE_URL="mysql://portal@db.example/portal")
    assert result.returncode == 2
    assert _one_line(result.stderr).startswith("portal: configuration error: DATABASE_URL: ")


# Issue 8: help needs no configuration at all; only commands that do something need it.
@pytest.mark.parametrize("args", [["--help"], [], ["help"], ["help", "serve"], ["worker", "-h"]])
def test_help_prints_in_a_shell_with_no_configuration(args: list[str]) -> None:
    result = run_portal(*args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.strip()
    if len(args) < 2:
        for command in ("serve", "worker", "adduser", "addorg", "migrate"):
            assert f"    {command}\n" in result.stdout, command
    # It says, calmly and once, that commands will not start yet, and why.
    note = [line for line in result.stderr.splitlines() if line.startswith("portal: note:")]
    assert len(note) == 1 and "PORTAL_SECRET_KEY" in note[0], result.stderr


def test_help_with_a_complete_configuration_carries_no_note() -> None:
    result = run_portal("--help", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "portal: note:" not in result.stderr
    assert "    serve\n" in result.stdout


def test_a_command_still_refuses_to_start_without_configuration() -> None:
    result = run_portal("migrate", "--help-me")  # an argument, not a request for help
    assert result.returncode == 2
    assert _one_line(result.stderr).startswith("portal: configuration error: PORTAL_SECRET_KEY")
