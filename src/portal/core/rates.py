"""Rate strings such as ``"5/15m"``: five attempts in any fifteen minutes.

Kept free of Django so that ``portal.config.env`` can validate the limits of the
environment at start-up, before settings exist; ``portal.core.ratelimit`` re-exports
``Rate`` for everyone else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# ASCII digits only: ``\d`` would also accept other scripts' digits (fullwidth 5). The digit
# counts are capped so that a pasted run of digits cannot become a huge number.
_RATE = re.compile(r"([0-9]{1,7})/([0-9]{0,5})([smhd])")
# Every admitted attempt is stored until it leaves its window, so a limit is also the
# most entries one key can hold: a million is far above any sign-in need.
MAX_LIMIT = 1_000_000
MAX_WINDOW = 30 * 86400


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` attempts in any interval of ``window`` seconds."""

    limit: int
    window: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Read ``N/[M]unit`` (units s, m, h, d), or raise ``ValueError`` naming the problem."""
        match = _RATE.fullmatch(text.strip())
        if not match:
            raise ValueError(f"rate {text!r}: expected N/[M]unit with unit s, m, h or d, "
                             "e.g. 5/15m")
        count, multiple, unit = match.groups()
        limit, window = int(count), int(multiple or 1) * _UNITS[unit]
        # A zero window would admit nothing or divide by zero; a zero limit is a switch
        # that turns a door off, not a rate, and belongs in a setting of its own.
        if limit < 1 or window < 1:
            raise ValueError(f"rate {text!r}: the count and the window must be at least 1")
        if limit > MAX_LIMIT:
            raise ValueError(f"rate {text!r}: the count must be at most {MAX_LIMIT}")
        if window > MAX_WINDOW:
            raise ValueError(f"rate {text!r}: the window must be at most 30 days")
        return cls(limit, window)
