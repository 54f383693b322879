"""Fixtures borrowed from the service desk tests: a signed-in Alice, Sam and his admin."""

from tests.servicedesk.conftest import alice_client  # noqa: F401
from tests.servicedesk.test_admin import sam, staff_client  # noqa: F401
