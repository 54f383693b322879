"""What kind of file an upload is, decided by its bytes and never by its name.

A name is whatever the uploader typed: ``report.png`` can hold an HTML page. The portal
serves attachments back to other people, so the type it records (and later sends as
``Content-Type``) comes from the content alone, from a short allow-list:

- images a screenshot comes as: PNG, JPEG, GIF, WebP, by their magic numbers;
- PDF (``%PDF-``) and ZIP (a local file header, ``PK\\x03\\x04``: log bundles);
- plain text (logs, configuration dumps): valid UTF-8 without a single NUL byte, whose
  first non-blank characters do not open markup. Browsers sniff text that starts with
  ``<html``, ``<svg``, ``<?xml`` or ``<!--`` as a page or an image with scripts, so such a
  file is refused as "HTML, SVG or XML", whatever it is named.

Everything else (SVG, HTML, executables, Office files other than as ZIP, unknown bytes) is
refused. This module is pure: it reads bytes it is given and names what it found, or
raises ``UnsupportedType`` carrying the reason as a fact; the words live in the forms.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass

# Enough to see every signature below; text is checked to its end (see ``detect``).
HEAD_BYTES = 16
# How much of a text file's start is looked at for markup (after leading blanks).
MARKUP_WINDOW = 1024


@dataclass(frozen=True)
class FileType:
    """An allowed kind of file: the Content-Type it is served with and its usual suffix."""

    content_type: str
    extension: str
    label: str  # how a page names it: "PNG image"


PNG = FileType("image/png", "png", "PNG image")
JPEG = FileType("image/jpeg", "jpg", "JPEG image")
GIF = FileType("image/gif", "gif", "GIF image")
WEBP = FileType("image/webp", "webp", "WebP image")
PDF = FileType("application/pdf", "pdf", "PDF document")
ZIP = FileType("application/zip", "zip", "ZIP archive")
TEXT = FileType("text/plain; charset=utf-8", "txt", "text file")

ALLOWED = (PNG, JPEG, GIF, WEBP, PDF, ZIP, TEXT)
_BY_CONTENT_TYPE = {kind.content_type: kind for kind in ALLOWED}


def extension_of(content_type: str) -> str:
    """Return the usual suffix of an allowed type ("bin" for anything else)."""
    kind = _BY_CONTENT_TYPE.get(content_type)
    return kind.extension if kind else "bin"


class UnsupportedType(Exception):
    """The bytes are none of the allowed kinds; ``reason`` says which rule refused them."""

    EMPTY = "empty"
    MARKUP = "markup"  # HTML, SVG or XML: a browser would run it
    BINARY = "binary"  # not one of the images, PDF or ZIP, and not text

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _signature(head: bytes) -> FileType | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return ZIP
    return None


def _opens_markup(text_start: str) -> bool:
    """Return whether text starts like HTML, SVG or XML (what browsers sniff as a page)."""
    stripped = text_start.lstrip("\ufeff \t\r\n\f")
    if len(stripped) < 2 or stripped[0] != "<":
        return False
    # "<html", "<svg", "</p>", "<!DOCTYPE", "<!--", "<?xml": a tag, a declaration or a
    # processing instruction. "<13>Dec 1 …" (a syslog priority) is not markup.
    return stripped[1].isalpha() or stripped[1] in "!?/"


def detect(chunks: Iterable[bytes]) -> FileType:
    """Return the allowed type of the file whose bytes ``chunks`` yields, in order.

    Binary kinds are recognised by their first bytes. Anything else must be text all the
    way through: every chunk is decoded incrementally (so a character split across two
    chunks is fine) and a NUL anywhere refuses it.
    """
    iterator = iter(chunks)
    head = b""
    pending: list[bytes] = []
    for chunk in iterator:
        pending.append(chunk)
        head += chunk
        if len(head) >= HEAD_BYTES:
            break
    if not head:
        raise UnsupportedType(UnsupportedType.EMPTY)
    found = _signature(head)
    if found is not None:
        return found
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    start = ""
    try:
        for chunk in (*pending, *iterator):
            if b"\x00" in chunk:
                raise UnsupportedType(UnsupportedType.BINARY)
            text = decoder.decode(chunk)
            if len(start) < MARKUP_WINDOW:
                start += text[:MARKUP_WINDOW]
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UnsupportedType(UnsupportedType.BINARY) from None
    if _opens_markup(start):
        raise UnsupportedType(UnsupportedType.MARKUP)
    return TEXT
