"""Serve one attachment: the response headers that keep an uploaded file inert.

Whoever calls ``attachment_response`` has already decided the reader may have the file
(``services.attachment_for`` for customers, the staff admin for staff). The response:

- ``Content-Type`` is the type detected when the file was accepted, never the uploader's;
- ``Content-Disposition: attachment`` with the cleaned original name, as RFC 6266 asks:
  an ASCII ``filename=`` fallback and, for any other name, the exact name in
  ``filename*=UTF-8''…`` (RFC 5987 percent-encoding);
- ``X-Content-Type-Options: nosniff``, so a browser never guesses a page out of a file;
- ``Content-Security-Policy: sandbox`` with nothing allowed (``DOWNLOAD_CSP``);
- ``Cross-Origin-Resource-Policy: same-origin``, so another site cannot embed it;
- ``Cache-Control: no-store`` like every page (the security headers middleware).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from django.http import FileResponse

from portal.core.security_headers import mark_download
from portal.servicedesk.models import Attachment

_NOT_PLAIN = re.compile(r"[^A-Za-z0-9 ._()\-+,=@]")


def ascii_fallback(name: str) -> str:
    """Return ``name`` in plain ASCII for old clients: accents dropped, the rest ``_``."""
    flat = "".join(ch for ch in unicodedata.normalize("NFKD", name)
                   if not unicodedata.combining(ch))
    flat = _NOT_PLAIN.sub("_", flat).strip(" .")
    return flat or "attachment"


def content_disposition(name: str) -> str:
    """Return ``attachment; filename=…`` for ``name`` (RFC 6266, RFC 5987 when needed)."""
    fallback = ascii_fallback(name)
    if fallback == name:
        return f'attachment; filename="{fallback}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def attachment_response(attachment: Attachment) -> FileResponse:
    """Return the file of ``attachment`` as a download, streamed from its storage."""
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
    response["Content-Disposition"] = content_disposition(attachment.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    mark_download(response)
    return response
