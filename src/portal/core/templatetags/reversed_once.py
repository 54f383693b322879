"""``{% url %}``, with the answer for a URL without arguments kept (decision 0036).

Every page's header and footer name the same dozen places (home, requests, help, your
sessions, sign out …) with ``{% url 'name' %}``, and Django reverses each one afresh on
every page: a fifth of the portal home's rendering time, profiled, for answers that
never change while the process runs. This library is a template builtin
(``TEMPLATES["OPTIONS"]["builtins"]``), so it stands in for Django's ``url`` in every
template: it parses exactly as Django's tag does, and a ``{% url 'name' %}`` without
arguments is reversed once per process, per namespace instance asked for, script prefix
and URL configuration (the request's own, or ``ROOT_URLCONF``). Anything with arguments
(a request's number, an article's slug) is reversed every time, as before, so nothing
grows without bound.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django import template
from django.conf import settings
from django.template import defaulttags
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape

register = template.Library()


@lru_cache(maxsize=512)
def reversed_once(view_name: str, current_app: str | None, prefix: str,
                  urlconf: Any) -> str:
    """``reverse(view_name)``, kept: the key is everything the answer depends on."""
    return reverse(view_name, current_app=current_app, urlconf=urlconf)


class URLNode(defaulttags.URLNode):
    """Django's node; without arguments, its answer comes from ``reversed_once``."""

    def render(self, context: Any) -> str:
        if self.args or self.kwargs:
            return str(super().render(context))
        view_name = self.view_name.resolve(context)
        # The namespace instance, found as Django's own tag finds it.
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        try:
            url = reversed_once(view_name, current_app, get_script_prefix(),
                                get_urlconf() or settings.ROOT_URLCONF)
        except NoReverseMatch:
            return str(super().render(context))  # NoReverseMatch, "as var": Django's own way
        if self.asvar:
            context[self.asvar] = url
            return ""
        return str(conditional_escape(url)) if context.autoescape else url


@register.tag
def url(parser: Any, token: Any) -> URLNode:
    """Parse as Django's ``{% url %}`` does; render through ``URLNode`` above."""
    node = defaulttags.url(parser, token)
    return URLNode(node.view_name, node.args, node.kwargs, node.asvar)
