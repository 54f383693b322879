"""README's production section shows the nginx configuration the tests run behind."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.proxy import NGINX_PORTAL_HTTP, NGINX_PORTAL_LOCATION

ROOT = Path(__file__).resolve().parents[2]


def _nginx_block() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```nginx\n(.*?)```", readme, re.S)
    assert len(blocks) == 1, "README.md shows one nginx configuration"
    return [line.strip() for line in blocks[0].splitlines() if line.strip()]


def _contains_in_order(lines: list[str], part: str) -> bool:
    wanted = [line.strip() for line in part.splitlines() if line.strip()]
    return any(lines[i:i + len(wanted)] == wanted for i in range(len(lines)))


def test_readme_shows_the_nginx_lines_the_test_stack_uses() -> None:
    lines = _nginx_block()
    assert _contains_in_order(lines, NGINX_PORTAL_HTTP)
    assert _contains_in_order(lines, NGINX_PORTAL_LOCATION)


def test_readme_logs_every_nginx_server_in_the_redacting_format() -> None:
    lines = _nginx_block()
    servers = lines.count("server {")
    assert servers == 2
    assert [line for line in lines if line.startswith("access_log")] == [
        "access_log /var/log/nginx/portal.access.log portal;"] * servers
    # $request is the raw request line, secret included.
    directives = [line for line in lines if not line.startswith("#")]
    assert not any(re.search(r"\$request\b(?!_)", line) for line in directives)


def test_operations_doc_stands_alone() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    assert "../" not in text
    for topic in ("FORWARDED_ALLOW_IPS", "/healthz", "[redacted]", "portal worker", "alert"):
        assert topic in text, topic
