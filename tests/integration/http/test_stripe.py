"""tests/unit/http/test_stripe.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_stripe import *  # noqa: F403

pytestmark = pytest.mark.integration
