"""Run the npm ``oidc-provider`` test provider (provider.mjs) and drive it without a browser.

``TestProvider.start()`` writes the provider's config (client, accounts) to a JSON file,
starts ``node provider.mjs`` on a loopback port (a free one unless given) and waits,
bounded, until its discovery document answers. The test fixtures and the local demo
(``demo.py``) both start providers this way. ``follow_to_callback`` plays the browser's part with
``requests``: follow the redirects, submit the login form, and stop at the portal's callback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "provider.mjs"
PACKAGE = HERE / "node_modules" / "oidc-provider" / "package.json"
READY_TIMEOUT = 20.0
MAX_REDIRECTS = 10
# The portal's callback, reverse("signin:oidc_callback", args=[provider]) under PORTAL_BASE_URL.
CALLBACK_PATH = "/signin/oidc/{}/callback/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Return whether something already listens on loopback ``port``."""
    with socket.socket() as sock:
        # As node binds: connections of a provider that just stopped (TIME_WAIT) do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def callback_url(portal_base_url: str, provider: str) -> str:
    """Return the redirect URI the portal at ``portal_base_url`` uses for ``provider``."""
    return portal_base_url.rstrip("/") + CALLBACK_PATH.format(provider)


def installed() -> bool:
    """Return whether node and the npm packages are there (``npm install --prefix …``)."""
    return shutil.which("node") is not None and PACKAGE.exists()


@dataclass
class TestProvider:
    """One ``provider.mjs`` process: a Google- or Microsoft-shaped OpenID provider."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    shape: str
    accounts: dict[str, dict[str, Any]]
    redirect_uris: list[str]
    client_id: str = ""
    client_secret: str = "test-client-secret-0123456789abcdef"
    port: int = field(default_factory=free_port)
    # More OAuth client metadata for the provider's one client (e.g. default_max_age).
    client_metadata: dict[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None

    def __post_init__(self) -> None:
        self.client_id = self.client_id or f"portal-{self.shape}-client"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        if self.shape == "microsoft":
            return f"{self.base_url}/organizations/v2.0/.well-known/openid-configuration"
        return f"{self.base_url}/.well-known/openid-configuration"

    def issuer_for(self, tenant: str) -> str:
        """The issuer a Microsoft-shaped token from ``tenant`` carries."""
        return f"{self.base_url}/{tenant}/v2.0"

    @property
    def settings(self) -> dict[str, str]:
        """This provider as one entry of ``settings.OIDC_PROVIDERS``."""
        return {"client_id": self.client_id, "client_secret": self.client_secret,
                "discovery_url": self.discovery_url}

    @property
    def log(self) -> str:
        assert self.workdir is not None
        path = self.workdir / "provider.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        # Checked first because a provider left running on the port would answer the
        # readiness probe in place of the new one, which then fails to bind and exits.
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is in use: cannot start the {self.shape} "
                               "test provider there")
        self.workdir = Path(tempfile.mkdtemp(prefix=f"oidc-{self.shape}-"))
        config = self.workdir / "config.json"
        config.write_text(json.dumps({
            "port": self.port, "shape": self.shape, "accounts": self.accounts,
            "client": {**self.client_metadata, "client_id": self.client_id,
                       "client_secret": self.client_secret,
                       "redirect_uris": self.redirect_uris}}))
        with open(self.workdir / "provider.log", "wb") as log:
            self.process = subprocess.Popen(
                ["node", str(SCRIPT)], cwd=HERE, stdout=log, stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                     "OIDC_TEST_CONFIG": str(config), "NODE_ENV": "test"},
                # Its own process group: Ctrl-C in a terminal reaches only the Python side,
                # which then stops the provider itself (stop()), in order.
                start_new_session=True)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"the {self.shape} test provider exited:\n{self.log}")
            try:
                if requests.get(self.discovery_url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the {self.shape} test provider did not start:\n{self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def _form_action(html: str, button: str) -> str:
    """Return the action of the form whose submit button says ``button``."""
    for form in re.findall(r"<form\b.*?</form>", html, flags=re.S):
        if f">{button}</button>" in form:
            action = re.search(r'action="([^"]+)"', form)
            assert action is not None
            return action.group(1)
    raise AssertionError(f"no form with a {button!r} button in:\n{html}")


def follow_to_callback(authorization_url: str, login: str | None, *, portal_base: str,
                       cancel: bool = False) -> str:
    """Act as the browser at the provider; return the portal callback URL it ends on.

    ``login`` picks the test account; ``cancel`` presses Cancel instead. Stops at the first
    redirect into ``portal_base`` without requesting it: the test hands that URL to the
    portal (Django's test client keeps the portal's session cookie).
    """
    with requests.Session() as browser:
        url = authorization_url
        for _ in range(MAX_REDIRECTS):
            if url.startswith(portal_base):
                return url
            response = browser.get(url, allow_redirects=False, timeout=10)
            if response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                continue
            assert response.status_code == 200, f"{response.status_code}: {response.text}"
            if cancel:
                action, data = _form_action(response.text, "Cancel"), {}
            else:
                action, data = _form_action(response.text, "Sign in"), {"login": login or ""}
            posted = browser.post(urljoin(url, action), data=data, allow_redirects=False,
                                  timeout=10)
            assert posted.is_redirect, f"{posted.status_code}: {posted.text}"
            url = urljoin(url, posted.headers["Location"])
        raise AssertionError(f"too many redirects; last at {url}")


def path_of(url: str) -> str:
    """Return the path and query of ``url`` (what Django's test client wants)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path
