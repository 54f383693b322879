"""``GET /metrics``: the Prometheus text format, for the monitoring system only.

Who may read it: whoever holds ``METRICS_TOKEN``, sent as ``Authorization: Bearer …``.

- ``METRICS_TOKEN`` unset: the page does not exist (the portal's ordinary 404 page).
- A missing or wrong token: 401 with an empty body and ``WWW-Authenticate: Bearer``,
  saying nothing about the token or the figures.
- The token is compared in constant time, and as SHA-256 digests, so neither its
  characters nor its length can be found by timing the answers.

The figures carry no address, name or secret, only counts and ages; still, they tell an
outsider how busy the door is and whether a flood works, so the proxy should not pass the
path at all (docs/operations.md shows the nginx lines).
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from portal.metrics.collect import PortalCollector, Unavailable


def token_matches(header: str, expected: str) -> bool:
    """Say whether an ``Authorization`` header carries ``expected`` as its bearer token."""
    if not expected:
        return False  # no token configured is never matched, not even by an empty one
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Answer the figures to the holder of ``METRICS_TOKEN``; to anyone else, nothing."""
    expected = settings.METRICS_TOKEN
    if not expected:
        raise Http404()
    if not token_matches(request.headers.get("Authorization", ""), expected):
        return HttpResponse(b"", status=401, content_type="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PortalCollector())
    try:
        body = generate_latest(registry)
    except Unavailable:
        # Zeros would read as "nothing happened" and reset every counter: answer an error.
        return HttpResponse(b"counts unavailable: Redis does not answer\n", status=503,
                            content_type="text/plain")
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
