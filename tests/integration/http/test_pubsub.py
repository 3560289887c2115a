"""tests/unit/http/test_pubsub.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_pubsub import *  # noqa: F403

pytestmark = pytest.mark.integration
