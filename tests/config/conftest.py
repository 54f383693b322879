from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file of this test's own."""
    return f"sqlite:///{tmp_path / 'portal.sqlite3'}"
