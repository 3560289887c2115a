"""tests/unit/http/test_log_scan.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_log_scan import *  # noqa: F403

pytestmark = pytest.mark.integration
