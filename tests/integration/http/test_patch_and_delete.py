"""tests/unit/http/test_patch_and_delete.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_patch_and_delete import *  # noqa: F403

pytestmark = pytest.mark.integration
