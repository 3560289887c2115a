"""tests/unit/http/test_documentation.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_documentation import *  # noqa: F403

pytestmark = pytest.mark.integration
