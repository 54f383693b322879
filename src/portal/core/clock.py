"""The one clock of the portal: a seam for tests (time-machine moves it)."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
