"""Supervise the processes of ``make run``: mail catcher, worker and development web server.

Each child runs in its own process group, so Ctrl-C reaches only this supervisor, which
then stops every child in order and waits for it (runserver's autoreloader included).
If one child dies, the others are stopped too: a half-running stack (a web server whose
mail goes nowhere) would only confuse.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

STOP_TIMEOUT_SECONDS = 10.0
WATCH_INTERVAL_SECONDS = 0.2


def portal_command(*args: str) -> list[str]:
    """Return the argv that runs ``portal <args>`` with this interpreter."""
    return [sys.executable, "-m", "portal.cli", *args]


def child_environment(base: Mapping[str, str], *, smtp_port: int, mail_dir: str,
                      base_url: str) -> dict[str, str]:
    """Return the environment of every child: debug mode, mail going to the catcher."""
    env = dict(base)
    env.update({
        "PORTAL_DEBUG": "true",
        # Links in caught mail must open this development server, whatever --addr says.
        "PORTAL_BASE_URL": base_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_TLS": "none",
        # The catcher takes no login; a relay password from the shell must not be sent
        # to it (and the worker would refuse to, without TLS, anyway).
        "SMTP_USERNAME": "",
        "SMTP_PASSWORD": "",
        "PORTAL_DEV_MAIL_DIR": mail_dir,
        "PYTHONUNBUFFERED": "1",
    })
    return env


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Start children, watch them, and stop them all together."""

    def __init__(self, children: Sequence[Child], env: Mapping[str, str],
                 out: TextIO = sys.stdout) -> None:
        self.children = list(children)
        self.env = dict(env)
        self.out = out

    def start(self) -> None:
        for child in self.children:
            child.process = subprocess.Popen(  # noqa: S603 - our own interpreter and argv
                list(child.argv), env=self.env, process_group=0)
            self.say(f"started {child.name} (pid {child.process.pid})")

    def watch(self, stop_requested: Callable[[], bool]) -> int:
        """Wait until a stop is requested (return 0) or a child exits (return non-zero)."""
        while True:
            if stop_requested():
                self.say("stopping")
                self.stop_all()
                return 0
            for child in self.children:
                assert child.process is not None
                code = child.process.poll()
                if code is not None:
                    self.say(f"{child.name} exited with status {code}; stopping the others")
                    self.stop_all()
                    return code or 1
            time.sleep(WATCH_INTERVAL_SECONDS)

    def stop_all(self) -> None:
        """SIGTERM every running child's group, wait (bounded), then SIGKILL stragglers."""
        for child in reversed(self.children):
            if child.alive():
                self._signal(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in reversed(self.children):
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in time; killing it")
                self._signal(child, signal.SIGKILL)
                child.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            # The group may hold grandchildren (runserver's reloader child): end them too.
            self._signal(child, signal.SIGTERM)

    def say(self, line: str) -> None:
        self.out.write(f"portal dev: {line}\n")
        self.out.flush()

    def _signal(self, child: Child, signum: int) -> None:
        assert child.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(child.process.pid, signum)
