"""Screenshots that survive Chromium's transient "Unable to capture screenshot".

Headless Chromium now and then refuses one capture (``Page.captureScreenshot`` answers
"Unable to capture screenshot") when the machine is busy, and takes the very same picture
when asked again a moment later. A screenshot here is evidence kept for a person to look
at, not what a test asserts, so a refusal is asked again, a bounded number of times;
any other error, and a refusal that persists, still fails the test.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Error

ATTEMPTS = 4
PAUSE_SECONDS = 0.5
TRANSIENT = "Unable to capture screenshot"


def take(page: Any, path: Path | str | None = None, *, full_page: bool = False) -> bytes:
    """Capture ``page`` (saved at ``path`` when given) and return the PNG's bytes."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            image: bytes = page.screenshot(path=None if path is None else str(path),
                                           full_page=full_page)
            return image
        except Error as error:
            if TRANSIENT not in str(error) or attempt == ATTEMPTS:
                raise
            time.sleep(PAUSE_SECONDS * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")
