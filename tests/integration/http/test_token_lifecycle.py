"""tests/unit/http/test_token_lifecycle.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_token_lifecycle import *  # noqa: F403

pytestmark = pytest.mark.integration
