"""tests/unit/http/test_platform.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_platform import *  # noqa: F403

pytestmark = pytest.mark.integration
