"""What the sign-in app tells the rest of the portal: someone just signed in.

``signed_in`` is sent by ``flows.finish.finish_sign_in`` inside its transaction, after the
session, the device cookie and the audit row, so a receiver's rows (the new-browser
notice in ``portal.notifications``) commit with the sign-in or vanish with it. Arguments:
``request``, ``user``, ``method`` and ``device``, the id of this browser's device cookie
(``devices``). Receivers must be cheap: every sign-in waits for them; they send no mail
themselves (the outbox does) and talk to nothing but the database.
"""

from django.dispatch import Signal

signed_in = Signal()
