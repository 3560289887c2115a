"""tests/unit/http/test_waitlist_field_rules.py on PostgreSQL over real HTTP, and the operator's view: a
rule added with `ctms waitlists rules set` is enforced by a running API within its cache interval
(CTMS_WAITLIST_RULES_CACHE_SECONDS, docs/waitlists.md), without a restart."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result

from ctms_adapters.memory.clock import ManualClock
from ctms_entrypoints.cli.main import cli
from tests.http_harness import RunApi, make_settings
from tests.unit.http.test_waitlist_field_rules import *  # noqa: F403

pytestmark = pytest.mark.integration

CACHE_SECONDS = 30


async def _ctms(database_url: str, *args: str) -> Result:
    """`ctms ARGS...` on the test database, in a thread (the command runs its own event loop)."""
    environment = {"CTMS_DB_URL": database_url, "CTMS_SECRET_KEY": "cli-tests"}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=environment)


def _signup(email: str, tier: str) -> dict[str, object]:
    return {
        "email": {"primary_email": email},
        "waitlists": [{"name": "monitor", "fields": {"tier": tier}}],
    }


async def test_a_rule_added_with_the_cli_is_enforced_by_a_running_api_after_the_cache_interval(
    running_api: RunApi, database_url: str
) -> None:
    clock = ManualClock(datetime.now(UTC))
    settings = make_settings(waitlist_rules_cache_seconds=CACHE_SECONDS)
    async with running_api(settings, clock=clock) as api:
        accepted = await api.post("/ctms", json=_signup("first@example.com", "platinum"))
        assert accepted.status_code == 201, accepted.text  # "monitor" has no rules: any key

        added = await _ctms(
            database_url, "waitlists", "rules", "set", "monitor", "tier", "--max-length", "4"
        )
        assert added.exit_code == 0, added.output

        # Within the interval the API validates with the rules it read: no database read per request.
        clock.advance(timedelta(seconds=CACHE_SECONDS - 1))
        still = await api.post("/ctms", json=_signup("second@example.com", "platinum"))
        assert still.status_code == 201, still.text

        clock.advance(timedelta(seconds=1))
        refused = await api.post("/ctms", json=_signup("third@example.com", "platinum"))
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"] == [
            {
                "loc": ["body", "waitlists", 0, "fields", "tier"],
                "msg": "ensure this value has at most 4 characters",
                "type": "value_error.any_str.max_length",
            }
        ]
        assert (
            await api.post("/ctms", json=_signup("fourth@example.com", "gold"))
        ).status_code == 201
        # Contacts stored before the rule still read.
        first = await api.get(f"/ctms/{accepted.json()['email']['email_id']}")
        assert first.status_code == 200
        assert first.json()["waitlists"][0]["fields"] == {"tier": "platinum"}

        removed = await _ctms(database_url, "waitlists", "rules", "remove", "monitor", "tier")
        assert removed.exit_code == 0, removed.output
        clock.advance(timedelta(seconds=CACHE_SECONDS))
        again = await api.post("/ctms", json=_signup("fifth@example.com", "platinum"))
        assert again.status_code == 201, again.text
