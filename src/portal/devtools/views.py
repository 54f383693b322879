"""Development only: the caught mail of ``make run``, so a newcomer can finish a sign-in.

Both views answer 404 unless the portal runs in debug mode with a catcher folder set
(``settings.PORTAL_DEV_MAIL_DIR``, which the settings only allow in debug): caught mail
holds live sign-in links and must never be reachable on a real deployment.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from portal.core.security_headers import allow_inline_styles
from portal.devtools import devmail


def _folder() -> str:
    folder = settings.PORTAL_DEV_MAIL_DIR
    if not (settings.DEBUG and folder):
        raise Http404("The development mail page is off.")
    return str(folder)


@never_cache
def inbox(request: HttpRequest) -> HttpResponse:
    messages = devmail.inbox(_folder())
    return render(request, "devtools/mail_inbox.html", {"caught": messages})


@never_cache
@allow_inline_styles  # the caught email's HTML is styled inline, as all email is
def message(request: HttpRequest, key: str) -> HttpResponse:
    caught = devmail.read(_folder(), key)
    if caught is None:
        raise Http404("No caught message has that name.")
    # Links in the HTML part open in the whole window (the sandbox blocks everything else):
    # clicking the sign-in link must carry this browser's cookies, as in a real mail client.
    srcdoc = f'<base target="_top">{caught.html}' if caught.html else ""
    response = render(request, "devtools/mail_message.html", {"caught": caught, "srcdoc": srcdoc})
    # Tokens in the page must not leak through Referer when a link is followed.
    response["Referrer-Policy"] = "no-referrer"
    return response
