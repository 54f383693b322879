"""Template context for every page: the passkey offer, taken only where a page shows it."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

from portal.passkeys import offers


def offer(request: HttpRequest) -> dict[str, Callable[[], offers.Offer | None]]:
    """Give every template ``passkey_offer``, a callable the template engine calls on use.

    Lazy on purpose: taking the offer marks it shown, so only a page that displays it
    (``base.html``) may take it; the admin's pages and JSON answers never do.
    """
    return {"passkey_offer": lambda: offers.take(request)}
