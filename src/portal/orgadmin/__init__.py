"""Pages for a customer organization's own admins: members, sign-in policy, sign-in history.

Everything here is scoped to the admin's own organization: ``access.organization_admin``
hands each view that organization, and every lookup goes through it, so another
organization's ids answer 404.
"""
