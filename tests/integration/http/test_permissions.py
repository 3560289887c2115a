"""tests/unit/http/test_permissions.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_permissions import *  # noqa: F403

pytestmark = pytest.mark.integration
