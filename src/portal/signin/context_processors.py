"""Template context for every page: which federated sign-in the portal offers."""

from __future__ import annotations

from django.http import HttpRequest

from portal.signin.oidc.providers import Offer, offer


def federation(request: HttpRequest) -> dict[str, Offer]:
    """Give every template ``federation``: the configured providers and how to name them.

    Pages and help articles mention Google or Microsoft only through it, so with no
    provider configured none of them promises a button the sign-in page does not have.
    """
    return {"federation": offer()}
