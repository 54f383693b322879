"""Run every benchmark in this folder, one after another (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failures = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name in ("run.py", "__init__.py"):
            continue
        print(f"== {script.name}", flush=True)
        failures += subprocess.call([sys.executable, str(script)], timeout=900) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
