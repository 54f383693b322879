"""Two local OpenID providers for trying Sign in with Google / Microsoft by hand.

    .venv/bin/python tests/support/oidc/demo.py [--google-port 9001] [--microsoft-port 9002]
                                                 [--portal-base-url http://localhost:8000]

Starts ``provider.mjs`` twice on fixed loopback ports, one Google-shaped and one
Microsoft-shaped, with accounts that match ``portal demo`` (Northwind Logistics and its
people), prints the environment variables to give the portal and the accounts to try,
and runs until Ctrl-C. The portal needs nothing else: it is configured by the same
documented variables as production (docs/oidc.md, "Try it locally").

Test support only. The providers sign in whoever types a name; never point a real
deployment at them. ``running()`` is the importable part (tests/signin/test_oidc_demo.py).
"""

from __future__ import annotations

import argparse
import ast
import shlex
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[3]
if __package__ in (None, ""):  # run as a script: make ``tests.support`` importable
    sys.path.insert(0, str(ROOT))

from tests.support.oidc.harness import (  # noqa: E402 - after the path set-up above
    TestProvider,
    callback_url,
    installed,
    port_in_use,
)

GOOGLE_PORT = 9001
MICROSOFT_PORT = 9002
PORTAL_BASE_URL = "http://localhost:8000"  # the portal's default, what `make run` serves
GOOGLE_CLIENT_ID = "portal-demo-google"
MICROSOFT_CLIENT_ID = "portal-demo-microsoft"
# Loopback-only demo credentials, printed for the operator to copy; they open nothing real.
GOOGLE_CLIENT_SECRET = "demo-google-secret-for-local-use-only"
MICROSOFT_CLIENT_SECRET = "demo-microsoft-secret-for-local-use-only"
# Ask for the account at every sign-in (max_age=0), as an account chooser does: otherwise
# the provider's own session signs the last account in again without a form, and one
# browser could not try one demo account after another.
CLIENT_METADATA = {"default_max_age": 0}

DEMO_COMMAND = ROOT / "src" / "portal" / "devtools" / "management" / "commands" / "demo.py"


def read_demo_constant(name: str) -> str:
    """Return the string constant ``name`` of the ``portal demo`` command module.

    The command's module is the one place the demo tenant is written down. Importing it
    would import the portal's models, which needs configured Django settings that this
    script (run in its own terminal, before the portal) does not have; so the assignment
    is read from its source. tests/signin/test_oidc_demo.py checks the value equals the
    imported constant.
    """
    tree = ast.parse(DEMO_COMMAND.read_text(encoding="utf-8"), filename=str(DEMO_COMMAND))
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            constant = ast.literal_eval(value)
            if isinstance(constant, str):
                return constant
    raise RuntimeError(f"{DEMO_COMMAND} defines no string constant {name}")


# The Microsoft 365 tenant Northwind Logistics registered in the demo data.
NORTHWIND_TENANT_ID = read_demo_constant("NORTHWIND_TENANT_ID")
# Somebody's own Entra tenant, registered by no organization (made up, like the demo's).
ATTACKER_TENANT_ID = "c0ffee00-1bad-4a11-9e77-000000000bad"


@dataclass(frozen=True)
class DemoAccount:
    """One login at a demo provider, and what the portal does with it."""

    login: str
    outcome: str  # printed for the operator, and documented in docs/oidc.md
    claims: Mapping[str, Any] = field(default_factory=dict)
    error: Mapping[str, str] = field(default_factory=dict)

    def entry(self) -> dict[str, Any]:
        """Return this account as provider.mjs reads it (``claims``, or an OAuth ``error``)."""
        return {"error": dict(self.error)} if self.error else {"claims": dict(self.claims)}


def _google(login: str, email: str, outcome: str, **claims: Any) -> DemoAccount:
    return DemoAccount(login, outcome, {"sub": f"demo-google-{login}", "email": email,
                                        "email_verified": True, **claims})


def _microsoft(login: str, email: str, outcome: str, *, tid: str, oid: str,
               upn: str = "") -> DemoAccount:
    return DemoAccount(login, outcome, {
        "sub": f"demo-ms-pairwise-{login}", "tid": tid, "oid": oid, "email": email,
        "preferred_username": upn or email})


GOOGLE_DEMO: tuple[DemoAccount, ...] = (
    _google("alice", "alice@northwind.example", "signs in as Alice (organization admin)",
            hd="northwind.example", name="Alice Moreno"),
    _google("bob", "bob@northwind.example", "signs in as Bob",
            hd="northwind.example", name="Bob Okafor"),
    _google("carol", "carol@northwind.example", "refused: her portal account is turned off",
            hd="northwind.example", name="Carol Jensen"),
    _google("unverified", "alice@northwind.example",
            "refused: Google has not verified the address", hd="northwind.example",
            email_verified=False),
    # A consumer Google account made with a work address: Google vouches for the mailbox
    # only inside a Workspace (hd), and a consumer account outlives the job.
    _google("consumer", "alice@northwind.example",
            "refused: not part of a registered Google Workspace (no hd)"),
    _google("gmail", "alice.moreno@gmail.com",
            "refused: no portal account uses alice.moreno@gmail.com"),
    _google("fabrikam", "erin@fabrikam.example",
            "refused: Workspace fabrikam.example is not registered (no account uses it)",
            hd="fabrikam.example"),
    # A Workspace nobody registered, whose admin gave one of its users Alice's address:
    # Northwind pinned its own Workspace domain, so no other Workspace speaks for it.
    _google("intruder", "alice@northwind.example",
            "refused: claims Alice's address from a Workspace Northwind did not pin",
            hd="northwind-intruder.example"),
    DemoAccount("blocked", "refused: IT policy has not approved the portal (consent blocked)",
                error={"error": "admin_policy_enforced",
                       "error_description": "The administrator has blocked this app."}),
)

MICROSOFT_DEMO: tuple[DemoAccount, ...] = (
    _microsoft("alice", "alice@northwind.example", "signs in as Alice (organization admin)",
               tid=NORTHWIND_TENANT_ID, oid="5b0c7a9e-1d2f-4e3a-8b4c-a11ce0000001"),
    _microsoft("bob", "bob@northwind.example", "signs in as Bob",
               tid=NORTHWIND_TENANT_ID, oid="5b0c7a9e-1d2f-4e3a-8b4c-b0b000000002"),
    _microsoft("carol", "carol@northwind.example", "refused: her portal account is turned off",
               tid=NORTHWIND_TENANT_ID, oid="5b0c7a9e-1d2f-4e3a-8b4c-ca2010000003"),
    # nOAuth (CVE-2023-36871): the admin of any tenant can type any address into `email`.
    _microsoft("attacker", "alice@northwind.example",
               "refused: claims Alice's address from an unregistered tenant (nOAuth)",
               tid=ATTACKER_TENANT_ID, oid="0e0e0e0e-6a7b-4c8d-9e0f-4ac4e5000bad",
               upn="mallory@attacker.example"),
    DemoAccount("consent", "refused: the tenant has not approved the portal (AADSTS65001)",
                error={"error": "access_denied", "error_description":
                       "AADSTS65001: The user or administrator has not consented to use the "
                       f"application with ID '{MICROSOFT_CLIENT_ID}'."}),
)


def accounts_table(accounts: Sequence[DemoAccount]) -> dict[str, dict[str, Any]]:
    """Return the ``accounts`` table provider.mjs takes, keyed by login."""
    return {account.login: account.entry() for account in accounts}


@dataclass
class DemoProviders:
    """The two running demo providers, and the portal configuration that points at them."""

    google: TestProvider
    microsoft: TestProvider

    def environment(self) -> dict[str, str]:
        """Return the documented variables that turn both buttons on, pointed at us."""
        return {
            "GOOGLE_CLIENT_ID": self.google.client_id,
            "GOOGLE_CLIENT_SECRET": self.google.client_secret,
            "GOOGLE_DISCOVERY_URL": self.google.discovery_url,
            "MICROSOFT_CLIENT_ID": self.microsoft.client_id,
            "MICROSOFT_CLIENT_SECRET": self.microsoft.client_secret,
            "MICROSOFT_DISCOVERY_URL": self.microsoft.discovery_url,
        }


@contextmanager
def running(*, google_port: int = GOOGLE_PORT, microsoft_port: int = MICROSOFT_PORT,
            portal_base_url: str = PORTAL_BASE_URL) -> Iterator[DemoProviders]:
    """Start both demo providers for a portal at ``portal_base_url``; stop them on exit."""
    for port in (google_port, microsoft_port):
        if port_in_use(port):
            raise RuntimeError(f"port {port} is in use (is the demo already running?); "
                               "choose another with --google-port / --microsoft-port")
    google = TestProvider("google", accounts_table(GOOGLE_DEMO),
                          [callback_url(portal_base_url, "google")],
                          client_id=GOOGLE_CLIENT_ID, client_secret=GOOGLE_CLIENT_SECRET,
                          port=google_port, client_metadata=CLIENT_METADATA)
    microsoft = TestProvider("microsoft", accounts_table(MICROSOFT_DEMO),
                             [callback_url(portal_base_url, "microsoft")],
                             client_id=MICROSOFT_CLIENT_ID,
                             client_secret=MICROSOFT_CLIENT_SECRET, port=microsoft_port,
                             client_metadata=CLIENT_METADATA)
    try:
        google.start()
        microsoft.start()
        yield DemoProviders(google, microsoft)
    finally:
        microsoft.stop()
        google.stop()


def instructions(demo: DemoProviders, portal_base_url: str) -> str:
    """Return what the operator reads: the variables to export and the logins to try."""
    base = portal_base_url.rstrip("/")
    commands = [f"export {name}={shlex.quote(value)}"
                for name, value in demo.environment().items()]
    if base == PORTAL_BASE_URL:
        commands.append("make run")
    else:
        # `make run` always serves 127.0.0.1:8000; `portal dev --addr` serves elsewhere and
        # sets PORTAL_BASE_URL from the address for its children.
        commands += [f"export PORTAL_BASE_URL={shlex.quote(base)}",
                     f"PORTAL_DEBUG=true .venv/bin/portal dev --addr {urlsplit(base).netloc}"]
    lines = [
        "Demo OpenID providers are running (test support: never point a real portal at them):",
        f"  Google-shaped     {demo.google.base_url}",
        f"  Microsoft-shaped  {demo.microsoft.base_url}  "
        f"(Northwind's tenant: {NORTHWIND_TENANT_ID})",
        "",
        "In another terminal, in the checkout:",
        "",
        *(f"  {line}" for line in commands),
        "",
        f"Then open {base}/signin/, press a button, and type one of "
        "these into the provider's Account field (or press Cancel):",
    ]
    for label, accounts in (("Google", GOOGLE_DEMO), ("Microsoft", MICROSOFT_DEMO)):
        lines += ["", f"  Sign in with {label}"]
        lines += [f"    {account.login:<11} {account.outcome}" for account in accounts]
    lines += ["", "The providers ask for the account every time, so one browser can try one "
              "account after another.", "Ctrl-C stops both providers."]
    return "\n".join(lines)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a Google-shaped and a Microsoft-shaped OpenID provider on loopback, "
                    "with accounts matching `portal demo`, until Ctrl-C.")
    parser.add_argument("--google-port", type=int, default=GOOGLE_PORT,
                        help=f"loopback port of the Google-shaped provider (default {GOOGLE_PORT})")
    parser.add_argument("--microsoft-port", type=int, default=MICROSOFT_PORT,
                        help="loopback port of the Microsoft-shaped provider "
                             f"(default {MICROSOFT_PORT})")
    parser.add_argument("--portal-base-url", default=PORTAL_BASE_URL,
                        help="the portal's PORTAL_BASE_URL; the redirect URIs are built from it "
                             f"(default {PORTAL_BASE_URL})")
    args = parser.parse_args(argv)
    parts = urlsplit(args.portal_base_url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        parser.error("--portal-base-url must be an origin such as http://127.0.0.1:8010")
    if not installed():
        print("demo: needs node and the npm packages: "
              "npm install --prefix tests/support/oidc", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_stop)
    try:
        with running(google_port=args.google_port, microsoft_port=args.microsoft_port,
                     portal_base_url=args.portal_base_url) as demo:
            print(instructions(demo, args.portal_base_url), flush=True)
            while True:  # until Ctrl-C / SIGTERM; a provider that dies ends the demo
                for provider in (demo.google, demo.microsoft):
                    if provider.process is None or provider.process.poll() is not None:
                        print(f"demo: the {provider.shape} provider stopped:\n{provider.log}",
                              file=sys.stderr)
                        return 1
                time.sleep(0.5)
    except (KeyboardInterrupt, _Stop):
        print("\nStopped both demo providers.")
        return 0
    except RuntimeError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
