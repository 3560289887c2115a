"""The SQL of a contact write, pinned: the statement of a POST, a PUT and a PATCH as PostgreSQL receives it
(`contact_write.STEPS`). A change to any step shows here as a diff of `tests/unit/snapshots/*.sql`; review
it, then rewrite the snapshots with `CTMS_UPDATE_SNAPSHOTS=1` and commit them with the change."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from msgspec.structs import replace

from ctms_adapters.postgres.contact_write import STEPS, add_steps, save_steps, statement_for
from tests.builders import contact_from_body, make_contact, make_newsletter
from tests.samples import sample

SNAPSHOTS = Path(__file__).parent / "snapshots"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _post() -> frozenset[str]:
    """A sign-up of a contact with every group: its rows and its queue entry."""
    steps, _ = add_steps(contact_from_body(sample("maximal")), NOW)
    return steps


def _put() -> frozenset[str]:
    """A replacement at its largest: every satellite and item dropped or upserted, and the queue entry,
    all behind the guard."""
    return frozenset(step.name for step in STEPS if step.name.startswith("save:")) | {
        "enqueue:guarded"
    }


def _patch() -> frozenset[str]:
    """The commonest PATCH, a newsletter toggle read without a lock: the guard (the `emails` row and its
    version), the newsletter, the queue entry."""
    previous = make_contact(newsletters=(make_newsletter("firefox-news"),))
    toggled = replace(
        previous,
        email=replace(previous.email, update_timestamp=NOW),
        newsletters=(make_newsletter("firefox-news", subscribed=False, update_timestamp=NOW),),
    )
    steps, _ = save_steps(toggled, previous, "1234", NOW)
    return steps


@pytest.mark.parametrize("name", ["post", "put", "patch"])
def test_the_sql_of_a_contact_write_is_the_pinned_one(name: str) -> None:
    steps = {"post": _post, "put": _put, "patch": _patch}[name]()
    sql = statement_for(steps).sql + "\n"
    snapshot = SNAPSHOTS / f"contact_write_{name}.sql"
    if os.environ.get("CTMS_UPDATE_SNAPSHOTS") == "1":
        snapshot.write_text(sql)
    assert sql == snapshot.read_text(), f"the SQL of a {name.upper()} changed: see {snapshot}"


def test_a_patch_of_one_newsletter_touches_only_emails_newsletters_and_the_queue() -> None:
    assert _patch() == {"save:email", "save:newsletters", "enqueue:guarded"}
