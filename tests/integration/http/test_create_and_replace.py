"""tests/unit/http/test_create_and_replace.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_create_and_replace import *  # noqa: F403

pytestmark = pytest.mark.integration
