"""Signals the accounts app sends; other apps listen, accounts imports none of them."""

from django.dispatch import Signal

# Sent inside the transaction that took access away (a person or organization turned off,
# staff status removed, address changed, membership removed or moved), after the people's
# session epoch moved on. Arguments: ``user_ids`` (list of int), ``reason`` (str).
access_revoked = Signal()
