"""Words for numbers, said the same way on every page and in every email."""

from __future__ import annotations


def duration_text(seconds: int) -> str:
    """Say a duration the way a person would: "15 minutes", "8 hours", "14 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    if seconds >= 60:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} minute{'' if minutes == 1 else 's'} {rest} seconds"
    return f"{seconds} seconds"
