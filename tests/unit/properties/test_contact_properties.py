"""Property tests of the contact use cases on the in-memory adapters (issue #9).

Each example runs on a fresh store: PATCH then GET equals an independent model's merge (docs/contract.md §4.4), PUT then
GET round-trips the body modulo defaults (docs/contract.md §4.3, §5.2), and `/updates` cursor paging over timestamps
with many ties returns every matching contact exactly once, in `(update_timestamp, email_id)` order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctms_adapters.memory import (
    InMemoryStore,
    InMemoryUnitOfWork,
    ManualClock,
    SequentialIdGenerator,
)
from ctms_core.domain.contact import Contact, Email, Mofo
from ctms_core.domain.inputs import parse_contact_input, parse_contact_patch
from ctms_core.domain.updates import Cursor, UpdatesQuery
from ctms_core.services.contacts import ContactService
from tests.unit.properties import model
from tests.unit.properties.strategies import patch_bodies, whole_contacts

Result = TypeVar("Result")

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
EMAIL_ID = uuid.UUID("8a5c0b5e-6d42-4f4b-9d1e-4b5b1a1f2c3d")
TIMESTAMPS = ("create_timestamp", "update_timestamp")


class World:
    """A contact service on a fresh in-memory store, with a clock that moves one second per write."""

    def __init__(self) -> None:
        self.store = InMemoryStore()
        self.clock = ManualClock()
        self.service = ContactService(
            lambda: InMemoryUnitOfWork(self.store), self.clock, SequentialIdGenerator()
        )

    def tick(self) -> datetime:
        self.clock.advance(timedelta(seconds=1))
        return self.clock.now()


def run(scenario: Callable[[], Coroutine[Any, Any, Result]]) -> Result:
    """Run one example's coroutine on a private event loop in a worker thread: hypothesis drives sync
    test functions, and `asyncio.run` in the main thread would reset the session loop pytest-asyncio
    keeps for the async tests."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, scenario()).result()


def _without_timestamps(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in TIMESTAMPS}


def as_model(contact: Contact) -> model.Model:
    """The stored contact in the model's shape (JSON-like values, no timestamps or ids)."""
    plain = msgspec.to_builtins(contact)
    email = _without_timestamps(plain["email"])
    del email["email_id"]
    return {
        "email": email,
        **{
            group: None if plain.get(group) is None else _without_timestamps(plain[group])
            for group in ("amo", "fxa", "mofo")
        },
        "newsletters": {
            item["name"]: _without_timestamps({k: v for k, v in item.items() if k != "name"})
            for item in plain["newsletters"]
        },
        "waitlists": {
            item["name"]: _without_timestamps({k: v for k, v in item.items() if k != "name"})
            for item in plain["waitlists"]
        },
    }


def _assert_sorted_by_name(contact: Contact) -> None:
    for items in (contact.newsletters, contact.waitlists):
        names = [item.name for item in items]
        assert names == sorted(names)


@PROPERTY_SETTINGS
@given(initial=whole_contacts(), patches=st.lists(patch_bodies(), min_size=1, max_size=4))
def test_patch_then_get_equals_the_models_merge(
    initial: dict[str, Any], patches: list[dict[str, Any]]
) -> None:
    """After each PATCH, GET shows the model's merge; timestamps move exactly where data changed."""

    async def scenario() -> None:
        world = World()
        world.tick()
        created = await world.service.create(parse_contact_input(initial, require_email_id=False))
        email_id = created.contact.email_id
        expected = model.from_whole_body(initial)
        previous = await world.service.get(email_id)
        assert as_model(previous) == expected
        for body in patches:
            now = world.tick()
            await world.service.patch(email_id, parse_contact_patch(body))
            expected_next = model.apply_patch(expected, body)
            current = await world.service.get(email_id)
            assert as_model(current) == expected_next, body
            _assert_sorted_by_name(current)
            # The e-mail's update timestamp always moves; creation times never do.
            assert current.email.update_timestamp == now
            assert current.email.create_timestamp == previous.email.create_timestamp
            # A child keeps its timestamps unless its data changed (docs/contract.md §4.3).
            old_items = {item.name: item for item in previous.newsletters}
            for item in current.newsletters:
                old = old_items.get(item.name)
                if old is None:
                    assert (item.create_timestamp, item.update_timestamp) == (now, now)
                elif expected["newsletters"][item.name] == expected_next["newsletters"][item.name]:
                    assert item == old
                else:
                    assert item.create_timestamp == old.create_timestamp
                    assert item.update_timestamp == now
            if current.amo is not None and previous.amo is not None:
                if expected["amo"] == expected_next["amo"]:
                    assert current.amo == previous.amo
                else:
                    assert current.amo.create_timestamp == previous.amo.create_timestamp
                    assert current.amo.update_timestamp == now
            expected, previous = expected_next, current

    run(scenario)


@PROPERTY_SETTINGS
@given(first=whole_contacts(email_id=EMAIL_ID), second=whole_contacts(email_id=EMAIL_ID))
def test_put_then_get_round_trips_modulo_defaults(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    """PUT stores exactly the body (defaults filled, all-default groups dropped), replacing everything
    stored before; PUT of the same body again changes no timestamp but the e-mail's."""

    async def scenario() -> None:
        world = World()
        for body in (first, second):
            world.tick()
            parsed = parse_contact_input(body, require_email_id=True)
            await world.service.replace(EMAIL_ID, parsed)
            stored = await world.service.get(EMAIL_ID)
            assert as_model(stored) == model.from_whole_body(body)
            _assert_sorted_by_name(stored)
        before = await world.service.get(EMAIL_ID)
        now = world.tick()
        await world.service.replace(EMAIL_ID, parse_contact_input(second, require_email_id=True))
        after = await world.service.get(EMAIL_ID)
        assert after.email.update_timestamp == now
        assert msgspec.structs.replace(after, email=before.email) == before

    run(scenario)


_BASE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
# Few distinct instants (so many contacts share one), some a microsecond apart.
instants = st.sampled_from(
    [_BASE + timedelta(seconds=s, microseconds=us) for s in range(4) for us in (0, 1)]
)
paged_contacts = st.lists(
    st.tuples(st.uuids(version=4), instants, st.none() | st.booleans()),
    unique_by=lambda row: row[0],
    max_size=40,
)


@PROPERTY_SETTINGS
@given(
    rows=paged_contacts,
    limit=st.integers(min_value=1, max_value=7),
    start=instants,
    end=st.none() | instants,
    mofo_relevant=st.none() | st.booleans(),
)
def test_cursor_paging_returns_every_contact_once_in_order(
    rows: list[tuple[uuid.UUID, datetime, bool | None]],
    limit: int,
    start: datetime,
    end: datetime | None,
    mofo_relevant: bool | None,
) -> None:
    """Following `after` from page to page yields exactly the contacts with start <= ts < end (and the
    `mofo_relevant` filter), sorted by (update_timestamp, email_id), each once, and then stops."""

    async def scenario() -> None:
        world = World()
        world.clock.set(_BASE + timedelta(days=1))  # `end` defaults to now: after every instant
        async with InMemoryUnitOfWork(world.store) as uow:
            for email_id, instant, relevant in rows:
                await uow.contacts.add(
                    Contact(
                        email=Email(
                            primary_email=f"{email_id}@example.com",
                            email_id=email_id,
                            create_timestamp=instant,
                            update_timestamp=instant,
                        ),
                        mofo=None if relevant is None else Mofo(mofo_relevant=relevant),
                    )
                )
            await uow.commit()
        upper = end or world.clock.now()

        def matches(relevant: bool | None) -> bool:
            return mofo_relevant is None or bool(relevant) == mofo_relevant

        expected = sorted(
            (instant, email_id)
            for email_id, instant, relevant in rows
            if start <= instant < upper and matches(relevant)
        )
        seen: list[tuple[datetime, uuid.UUID]] = []
        after: Cursor | None = None
        for _ in range(len(rows) + 2):  # bounded: a correct pager needs at most len/limit + 1 pages
            page = await world.service.updates(
                UpdatesQuery(
                    start=start, end=end, limit=limit, after=after, mofo_relevant=mofo_relevant
                )
            )
            assert len(page.items) <= limit
            seen.extend((c.email.update_timestamp, c.email_id) for c in page.items)  # type: ignore[misc]
            if page.after is None:
                assert len(page.items) < limit or not page.items
                break
            after = Cursor.decode(page.after)
        else:
            raise AssertionError("paging did not end")
        assert seen == expected

    run(scenario)
