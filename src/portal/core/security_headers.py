"""Response headers the portal adds to every response: CSP, Permissions-Policy, no-store.

This module is the one home of their values (docs/security.md, "Response headers and
cookies", lists them with the tests that fail if they change). Django's own
``SecurityMiddleware`` and ``XFrameOptionsMiddleware`` add the rest from settings
(HSTS, nosniff, Referrer-Policy, Cross-Origin-Opener-Policy, X-Frame-Options).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control
from whitenoise.middleware import WhiteNoiseFileResponse

CSP = "Content-Security-Policy"
# 128 bits, fresh for every response: a nonce an attacker can predict or reuse is no nonce.
NONCE_BYTES = 16
_NONCE_ATTRIBUTE = "csp_nonce"
_INLINE_STYLES_ATTRIBUTE = "csp_allows_inline_styles"
_DOWNLOAD_ATTRIBUTE = "csp_download"
# A file a customer uploaded, served back (``mark_download``): nothing in it may load, run
# or submit anything, even if a browser were talked into rendering it instead of saving it.
DOWNLOAD_CSP = ("default-src 'none'; sandbox; base-uri 'none'; form-action 'none'; "
                "frame-ancestors 'none'")

# Browser features the portal never uses, denied to the portal and to anything it embeds,
# so an injected script or a framed page cannot ask for them. Passkeys (WebAuthn) stay
# allowed for the portal itself. Every name here is one Chromium recognizes: an unknown
# name is reported on the console, which the browser suite counts as a failure.
DENIED_FEATURES = (
    "accelerometer", "autoplay", "browsing-topics", "camera", "captured-surface-control",
    "clipboard-read", "compute-pressure", "digital-credentials-get", "display-capture",
    "encrypted-media", "fullscreen", "gamepad", "geolocation", "gyroscope", "hid",
    "identity-credentials-get", "idle-detection", "keyboard-map", "local-fonts",
    "magnetometer", "microphone", "midi", "otp-credentials", "payment", "picture-in-picture",
    "screen-wake-lock", "serial", "speaker-selection", "storage-access", "usb",
    "window-management", "xr-spatial-tracking",
)
SELF_ONLY_FEATURES = ("publickey-credentials-create", "publickey-credentials-get")
PERMISSIONS_POLICY = ", ".join([*(f"{name}=()" for name in DENIED_FEATURES),
                                *(f"{name}=(self)" for name in SELF_ONLY_FEATURES)])


def new_nonce() -> str:
    """Return a fresh CSP nonce (URL-safe base64, as the CSP grammar allows)."""
    return secrets.token_urlsafe(NONCE_BYTES)


def nonce_of(request: HttpRequest) -> str:
    """Return the nonce of this request's CSP ("" for a request the middleware never saw)."""
    return str(getattr(request, _NONCE_ATTRIBUTE, ""))


def origin_of(url: str) -> str:
    """Return ``scheme://host[:port]`` of ``url`` ("" if it has no host), as CSP writes it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def identity_provider_origins() -> list[str]:
    """Return the origins of the configured identity providers, in display order.

    The Google and Microsoft buttons are GET forms to the portal's own start URL, which
    redirects to the provider's authorization endpoint; Chromium applies ``form-action``
    to redirects that follow a form submission, so the provider's origin must be allowed
    or the button does nothing. The origin is the discovery URL's: Google's and
    Microsoft's authorization endpoints live on the same host as their discovery
    documents. It is read from settings, never from the network or a cache, so the policy
    is the same on every process and for every request.
    """
    # Imported here: core is below signin, and only this question crosses that line.
    from portal.signin.oidc.providers import configured_providers

    origins: list[str] = []
    for provider in configured_providers():
        origin = origin_of(provider.discovery_url)
        if origin and origin not in origins:
            origins.append(origin)
    return origins


def content_security_policy(nonce: str, form_targets: Iterable[str] = (), *,
                            inline_styles: bool = False) -> str:
    """Return the portal's CSP for one response.

    Scripts: the portal's own files and elements carrying this response's nonce; never
    inline code or event attributes (no ``unsafe-inline``), so injected markup cannot run.
    Styles: the portal's stylesheets only, unless ``inline_styles`` (see
    ``allow_inline_styles``). No plugins, no ``<base>`` (which would move every relative
    URL elsewhere), no framing by any site (clickjacking), and forms only to the portal
    and to ``form_targets``, the identity providers.
    """
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", f"'nonce-{nonce}'"],
        "style-src": ["'self'", "'unsafe-inline'"] if inline_styles else ["'self'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", *form_targets],
    }
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def allow_inline_styles(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Mark a view whose page may use inline styles; everything else in the CSP stays.

    Only for the development mail page (404 outside development): it shows a caught email
    in a ``srcdoc`` frame, which inherits the page's policy, and emails are styled inline.
    """
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        setattr(response, _INLINE_STYLES_ATTRIBUTE, True)
        return response
    return wrapped


def mark_download(response: HttpResponseBase) -> HttpResponseBase:
    """Give ``response`` (an uploaded file served back) ``DOWNLOAD_CSP`` instead of the pages'."""
    setattr(response, _DOWNLOAD_ATTRIBUTE, True)
    return response


def is_static_file(response: HttpResponseBase) -> bool:
    """Return whether WhiteNoise served this response from the static files."""
    return isinstance(response, WhiteNoiseFileResponse)


class SecurityHeadersMiddleware:
    """Give each request a CSP nonce and each response the headers of this module.

    ``Cache-Control: no-store`` goes on every response except static files: every page
    of the portal either shows who is signed in (with a CSRF token in its sign-out form)
    or is a sign-in form, the help center included, so no page may stay in a browser's
    or a proxy's cache (nor may a customer's attachment). The CSP is always this module's:
    a view cannot replace it, only ask for inline styles (``allow_inline_styles``) or, for
    an uploaded file served back, the locked-down ``DOWNLOAD_CSP`` (``mark_download``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        nonce = new_nonce()
        setattr(request, _NONCE_ATTRIBUTE, nonce)
        response = self.get_response(request)
        if getattr(response, _DOWNLOAD_ATTRIBUTE, False):
            response[CSP] = DOWNLOAD_CSP
        else:
            response[CSP] = content_security_policy(
                nonce, identity_provider_origins(),
                inline_styles=getattr(response, _INLINE_STYLES_ATTRIBUTE, False))
        response["Permissions-Policy"] = PERMISSIONS_POLICY
        if not is_static_file(response):
            patch_cache_control(response, no_store=True)
        return response
