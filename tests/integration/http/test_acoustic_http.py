"""tests/unit/http/test_acoustic_http.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_acoustic_http import *  # noqa: F403

pytestmark = pytest.mark.integration
