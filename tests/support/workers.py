"""Real `portal worker` processes for tests, pointed at the test database and SMTP server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def wait_until(condition: Callable[[], bool], timeout: float = 30.0,
               what: str = "condition", tick: Callable[[], None] | None = None) -> None:
    """Poll ``condition`` (bounded by ``timeout``); fail naming ``what`` if it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if tick is not None:
            tick()
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Workers:
    """Start and stop `portal worker` processes pointed at the test database and server."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1, *args: str) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            with (self.logs / f"worker-{len(self.processes)}.log").open("wb") as log:
                process = subprocess.Popen([sys.executable, "-m", "portal.cli", "worker", *args],
                                           env=self.env, stdout=log, stderr=subprocess.STDOUT)
            self.processes.append(process)
            started.append(process)
        return started

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise

    def stop_all(self) -> list[int]:
        return [self.stop(process) for process in self.processes]

    def kill_all(self) -> None:
        """SIGKILL whatever still runs: before pytest-django empties the tables under it."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))
