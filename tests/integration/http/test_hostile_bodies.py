"""tests/unit/http/test_hostile_bodies.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_hostile_bodies import *  # noqa: F403

pytestmark = pytest.mark.integration
