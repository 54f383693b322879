"""`portal dev` (what `make run` starts): catcher, worker and web server, stopped together."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.smtp import free_port

STARTUP_SECONDS = 60.0


class DevStack:
    def __init__(self, tmp_path: Path) -> None:
        self.web_port = free_port()
        self.smtp_port = free_port()
        self.output = tmp_path / "dev.log"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SMTP_", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS"))}
        env.update({"PORTAL_DEBUG": "true", "PORTAL_VAR_DIR": str(tmp_path),
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}",
                    "PYTHONUNBUFFERED": "1"})
        with self.output.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "portal.cli", "dev", "--noreload",
                 "--addr", f"127.0.0.1:{self.web_port}", "--smtp-port", str(self.smtp_port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if self.get("/healthz")[0] == 200 and "worker" in self.log():
                    with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=2):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("portal dev did not come up:\n" + self.log())

    def child_pid(self, name: str) -> int:
        match = re.search(rf"started {name} \(pid (\d+)\)", self.log())
        assert match, self.log()
        return int(match.group(1))

    def wait_exit(self) -> int:
        return self.process.wait(timeout=30)


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[DevStack]:
    stack = DevStack(tmp_path)
    try:
        yield stack
    finally:
        if stack.process.poll() is None:
            os.killpg(stack.process.pid, signal.SIGKILL)
            stack.process.wait(timeout=10)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not running; it only waits for its parent to read its status.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_dev_runs_the_stack_and_caught_mail_shows_on_the_dev_page(dev_stack):
    dev_stack.wait_ready()
    with smtplib.SMTP("127.0.0.1", dev_stack.smtp_port, timeout=5) as conn:
        conn.sendmail("noreply@cloudsentry.com", ["alice@northwind.example"],
                      b"Subject: Caught in development\r\nTo: alice@northwind.example\r\n\r\nHi\r\n")
    status, body = dev_stack.get("/dev/mail/")
    assert status == 200
    assert "Caught in development" in body
    pids = [dev_stack.child_pid(name) for name in ("mail catcher", "worker", "web server")]

    dev_stack.process.send_signal(signal.SIGINT)
    assert dev_stack.wait_exit() == 0, dev_stack.log()
    assert not any(alive(pid) for pid in pids)


def test_when_a_child_dies_dev_stops_the_others_and_fails(dev_stack):
    dev_stack.wait_ready()
    catcher, web = dev_stack.child_pid("mail catcher"), dev_stack.child_pid("web server")
    os.kill(dev_stack.child_pid("worker"), signal.SIGKILL)
    assert dev_stack.wait_exit() != 0
    assert "worker exited" in dev_stack.log()
    assert not alive(catcher) and not alive(web)


def test_dev_refuses_to_run_outside_debug_mode_even_where_the_app_is_installed(tmp_path):
    # Production does not install the app at all (test_only_in_development.py); the test
    # settings do, with debug off, so `portal dev` itself must still refuse there.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SMTP_", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS"))}
    env.update({"PORTAL_DEBUG": "false", "PORTAL_VAR_DIR": str(tmp_path),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                "DJANGO_SETTINGS_MODULE": "portal.config.settings_test"})
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "dev", "--noreload",
         "--addr", f"127.0.0.1:{free_port()}", "--smtp-port", str(free_port())],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        # It started the stack after all: SIGINT makes the supervisor stop its children.
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
        raise AssertionError("portal dev ran with PORTAL_DEBUG off") from None
    assert process.returncode == 1
    assert "portal dev is for development only: set PORTAL_DEBUG=true." in stderr
    assert not (tmp_path / "x.db").exists()  # refused before migrating anything


DEBUG_SEND = """
import django
django.setup()
from django.core.management import call_command
from django.db import transaction
from portal.mail.outbox import enqueue
from portal.mail.worker import deliver_due
call_command("migrate", verbosity=0)
with transaction.atomic():
    enqueue(to="alice@northwind.example", subject="Sent in debug mode", text="Hi")
print(deliver_due())
"""


def test_debug_mode_sends_where_the_smtp_settings_say(smtp_server, tmp_path):
    smtp_server.clear()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "DJANGO_SETTINGS"))}
    env.update({"PORTAL_DEBUG": "true", "PORTAL_VAR_DIR": str(tmp_path),
                "DATABASE_URL": f"sqlite:///{tmp_path / 'debug.sqlite3'}",
                "DJANGO_SETTINGS_MODULE": "portal.config.settings",
                "SMTP_HOST": smtp_server.host, "SMTP_PORT": str(smtp_server.port),
                "SMTP_TLS": "none"})
    result = subprocess.run([sys.executable, "-c", DEBUG_SEND], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    [received] = smtp_server.wait_for(1)
    assert received.message["Subject"] == "Sent in debug mode"
