"""tests/unit/http/test_updates_and_identities.py on PostgreSQL over real HTTP."""

import pytest

from tests.unit.http.test_updates_and_identities import *  # noqa: F403

pytestmark = pytest.mark.integration
