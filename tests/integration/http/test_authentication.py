"""tests/unit/http/test_authentication.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_authentication import *  # noqa: F403

pytestmark = pytest.mark.integration
