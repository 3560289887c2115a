"""tests/unit/http/test_read_contacts.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_read_contacts import *  # noqa: F403

pytestmark = pytest.mark.integration
