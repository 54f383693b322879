"""``{% url %}`` reverses a URL without arguments once per process, and is Django's otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.template import Context, Template
from django.urls import NoReverseMatch, reverse, set_script_prefix

from portal.core.templatetags import reversed_once


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names reversed through the kept path, each time it really reverses."""
    made: list[str] = []

    def counting(view_name: str, **kwargs: Any) -> str:
        made.append(view_name)
        return reverse(view_name, **kwargs)

    reversed_once.reversed_once.cache_clear()
    monkeypatch.setattr(reversed_once, "reverse", counting)
    yield made
    reversed_once.reversed_once.cache_clear()
    set_script_prefix("/")


def render(source: str, **context: Any) -> str:
    return Template(source).render(Context(context))


def test_every_template_gets_this_url_tag() -> None:
    node = Template("{% url 'home' %}").nodelist[0]
    assert isinstance(node, reversed_once.URLNode)


def test_a_url_without_arguments_is_reversed_once(calls: list[str]) -> None:
    for _ in range(3):
        assert render("{% url 'home' %} {% url 'servicedesk:list' %}") == "/ /requests/"
    assert calls == ["home", "servicedesk:list"]


def test_the_answer_follows_the_script_prefix(calls: list[str]) -> None:
    assert render("{% url 'servicedesk:list' %}") == "/requests/"
    set_script_prefix("/portal/")
    assert render("{% url 'servicedesk:list' %}") == "/portal/requests/"


def test_a_url_with_arguments_is_djangos_every_time(calls: list[str]) -> None:
    source = "{% url 'helpcenter:article' slug %}"
    assert render(source, slug="magic-link") == reverse("helpcenter:article",
                                                        args=["magic-link"])
    assert render(source, slug="email-never-arrived").endswith("/email-never-arrived/")
    assert calls == []


def test_as_var_and_escaping_work_as_in_django(calls: list[str]) -> None:
    assert render("{% url 'home' as where %}[{{ where }}]") == "[/]"
    assert render("{% url 'home' as where %}{% url 'home' as again %}{{ again }}") == "/"
    assert calls == ["home"]


def test_an_unknown_name_still_fails_loudly(calls: list[str]) -> None:
    with pytest.raises(NoReverseMatch):
        render("{% url 'no-such-page' %}")
    assert render("{% url 'no-such-page' as where %}[{{ where }}]") == "[]"


def test_the_answer_follows_the_url_configuration(calls: list[str], settings: Any) -> None:
    assert render("{% url 'home' %}") == "/"
    settings.ROOT_URLCONF = "tests.core.urls_elsewhere"
    assert render("{% url 'home' %}") == "/elsewhere/"
