from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from portal.orgadmin.access import administered_organization


def organization_admin(request: HttpRequest) -> dict[str, Any]:
    """Tell the page whether to show the "Your organization" link."""
    user = getattr(request, "user", None)
    return {"administers_organization": administered_organization(user) is not None}
