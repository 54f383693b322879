"""How Django writes dates and times for the portal's one language, the staff admin included.

Django looks these names up here before its own English formats ("N j, Y, P"), so the
admin's lists, read-only fields and history pages write a moment the way every portal page
does: ``portal.core.moments.MOMENT_FORMAT``, in the reader's zone (the zone middleware).
"""

from portal.core.moments import MOMENT_FORMAT

DATETIME_FORMAT = MOMENT_FORMAT
SHORT_DATETIME_FORMAT = MOMENT_FORMAT
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i"
