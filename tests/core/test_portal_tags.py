"""The template filters pages use to describe sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from portal.core.templatetags.portal_tags import ago, describe_agent_filter, sign_in_method

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_describe_agent_filter_names_browser_and_system() -> None:
    edge = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0")
    assert describe_agent_filter(edge) == "Edge on Windows"
    assert describe_agent_filter("") == "an unknown browser"
    assert describe_agent_filter(None) == "an unknown browser"


def test_sign_in_method_reads_as_words() -> None:
    assert [sign_in_method(m) for m in ("email", "google", "microsoft")] == [
        "Email link", "Google", "Microsoft"]
    assert sign_in_method("") == "Unknown"


def test_ago_says_just_now_under_a_minute() -> None:
    with time_machine.travel(NOW, tick=False):
        assert ago(NOW - timedelta(seconds=59)) == "just now"
        assert ago(NOW - timedelta(minutes=5)) == "5\xa0minutes ago"
        assert ago(None) == "never"
