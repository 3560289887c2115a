"""tests/unit/http/test_token_throttling.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_token_throttling import *  # noqa: F403

pytestmark = pytest.mark.integration
