"""Sign in with Google / Microsoft: two thin views around ``portal.signin.flows.oidc``."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.signin.flows import oidc as flow
from portal.signin.oidc.errors import FederationError
from portal.signin.oidc.pending import PendingSignIns
from portal.signin.oidc.providers import get_provider
from portal.signin.views import problems


def _refuse(request: HttpRequest, error: FederationError) -> HttpResponse:
    """Every refusal lands on the sign-in page, which always offers the email link."""
    messages.error(request, problems.federation_message(error))
    url = reverse("signin:start")
    if error.next_url != "/":
        url += "?" + urlencode({"next": error.next_url})
    return _no_referrer(HttpResponseRedirect(url))


def _no_referrer(response: HttpResponse) -> HttpResponse:
    # The callback's address carries the authorization code: never send it on as a Referer.
    response["Referrer-Policy"] = "no-referrer"
    return response


# Never inside a transaction (even if ATOMIC_REQUESTS is turned on): both views wait on
# the provider over the network.
@never_cache
@require_GET
@transaction.non_atomic_requests
def start(request: HttpRequest, provider: str) -> HttpResponse:
    if get_provider(provider) is None:
        raise Http404("No such sign-in provider.")
    pending = PendingSignIns.read(request)
    try:
        url = flow.begin(request, provider, request.GET.get("next"), pending)
    except FederationError as error:
        return _refuse(request, error)
    response = HttpResponseRedirect(url)
    pending.write(response)
    return response


@never_cache
@require_GET
@transaction.non_atomic_requests
def callback(request: HttpRequest, provider: str) -> HttpResponse:
    if get_provider(provider) is None:
        raise Http404("No such sign-in provider.")
    pending = PendingSignIns.read(request)
    try:
        completed = flow.complete(request, provider, pending)
    except FederationError as error:
        response = _refuse(request, error)
    else:
        response = _no_referrer(redirect(completed.next_url))
    pending.write(response)  # the used sign-in leaves the cookie, success or not
    return response
