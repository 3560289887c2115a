"""A save expecting the version a read without a lock returned (`get_versioned`) is optimistic: it writes
only if the contact still has that version, else nothing of it — queue entry included — and the unit's
commit raises `ContactChangedError`. Such a unit needs no transaction: one read, shared with other
readers, and one write statement, shared with other units' writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from msgspec.structs import replace
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import PostgresUnitOfWorkFactory
from ctms_adapters.postgres.acoustic_tables import pending_acoustic
from ctms_adapters.postgres.tables import amo, newsletters
from ctms_core.domain.contact import Amo, Contact
from ctms_core.domain.errors import ContactChangedError
from ctms_core.domain.lookup import LookupCriteria
from tests.builders import DEFAULT_TIME, make_contact, make_newsletter

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def _stored(factory: PostgresUnitOfWorkFactory) -> Contact:
    contact = make_contact(
        amo=Amo(user_id="7", create_timestamp=DEFAULT_TIME, update_timestamp=DEFAULT_TIME),
        newsletters=(make_newsletter("firefox-news"), make_newsletter("mozilla-news")),
    )
    async with factory() as uow:
        await uow.contacts.add(contact)
        await uow.commit()
    return contact


def _reshaped(contact: Contact, name: str) -> Contact:
    """`contact` with every kind of save part: a new first name, its amo dropped, one newsletter dropped
    and one added."""
    return replace(
        contact,
        email=replace(contact.email, first_name=name),
        amo=None,
        newsletters=tuple(
            sorted(
                (contact.newsletters[0], make_newsletter(f"{name.lower()}-news")),
                key=lambda newsletter: newsletter.name,
            )
        ),
    )


async def _change(factory: PostgresUnitOfWorkFactory, contact: Contact, name: str) -> Contact:
    """Read `contact` without a lock, change it and commit with its queue entry."""
    async with factory() as uow:
        stored = await uow.contacts.get_versioned(contact.email_id)
        assert stored is not None
        changed = _reshaped(stored.contact, name)
        await uow.contacts.save(
            changed, previous=stored.contact, expected_version=stored.version, enqueue_at=NOW
        )
        await uow.commit()
    return changed


async def _save_read_before(
    factory: PostgresUnitOfWorkFactory,
    contact: Contact,
    meanwhile: Callable[[], Awaitable[Any]],
    criteria: LookupCriteria | None = None,
) -> None:
    """Read `contact` with its version, without a lock (found by id, or by a lookup of `criteria`), let
    `meanwhile` commit another unit's write, then save a change expecting that version, with its queue
    entry, and commit."""
    async with factory() as late:
        email_id = contact.email_id
        if criteria is not None:
            (found,) = await late.contacts.lookup(criteria)
            email_id = found.email_id
        stored = await late.contacts.get_versioned(email_id)
        assert stored is not None
        await meanwhile()
        await late.contacts.save(
            _reshaped(stored.contact, "Late"),
            previous=stored.contact,
            expected_version=stored.version,
            enqueue_at=NOW,
        )
        await late.commit()


async def _delete(factory: PostgresUnitOfWorkFactory, contact: Contact) -> None:
    async with factory() as uow:
        await uow.contacts.delete(contact.email_id)
        await uow.commit()


async def test_a_change_read_without_a_lock_is_one_read_and_one_write_without_a_transaction(
    empty_database: AsyncEngine, statements: list[str]
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = await _stored(factory)
    statements.clear()

    changed = await _change(factory, contact, "Ada")

    assert len(statements) == 2
    assert not any(sql.startswith(("BEGIN", "COMMIT")) for sql in statements)
    async with factory() as uow:
        assert await uow.contacts.get(contact.email_id) == changed
    assert await _count(empty_database, pending_acoustic) == 1


async def test_a_save_of_a_contact_changed_since_it_was_read_writes_nothing(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = await _stored(factory)
    winner: list[Contact] = []

    async def locked_change() -> None:
        async with factory() as first:
            locked = await first.contacts.get(contact.email_id, for_update=True)
            assert locked is not None
            winner.append(replace(locked, email=replace(locked.email, last_name="First")))
            await first.contacts.save(winner[0], previous=locked, expected_version=None)
            await first.commit()

    with pytest.raises(ContactChangedError):
        await _save_read_before(factory, contact, locked_change)

    async with factory() as uow:
        assert await uow.contacts.get(contact.email_id) == winner[0]
    assert await _count(empty_database, pending_acoustic) == 0
    assert await _count(empty_database, amo) == 1
    assert await _count(empty_database, newsletters) == 2


async def test_a_save_of_a_contact_deleted_since_it_was_read_leaves_no_rows(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = await _stored(factory)

    with pytest.raises(ContactChangedError):
        await _save_read_before(factory, contact, lambda: _delete(factory, contact))

    assert await _count(empty_database, newsletters) == 0
    assert await _count(empty_database, pending_acoustic) == 0


async def test_of_changes_read_from_one_version_and_sent_in_one_statement_one_is_written(
    empty_database: AsyncEngine, statements: list[str]
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = await _stored(factory)
    units = [factory() for _ in range(3)]
    changes = []
    for uow, name in zip(units, ("Ada", "Bea", "Cy"), strict=True):
        await uow.__aenter__()
        stored = await uow.contacts.get_versioned(contact.email_id)
        assert stored is not None
        changes.append(_reshaped(stored.contact, name))
        await uow.contacts.save(
            changes[-1], previous=stored.contact, expected_version=stored.version, enqueue_at=NOW
        )
    statements.clear()

    outcomes = await asyncio.gather(*(uow.commit() for uow in units), return_exceptions=True)

    assert len(statements) == 1
    for uow in units:
        await uow.__aexit__(None, None, None)
    assert outcomes[0] is None
    assert all(isinstance(outcome, ContactChangedError) for outcome in outcomes[1:])
    async with factory() as uow:
        assert await uow.contacts.get(contact.email_id) == changes[0]
    assert await _count(empty_database, pending_acoustic) == 1
    assert await _count(empty_database, newsletters) == 2


async def test_of_concurrent_changes_read_from_one_version_exactly_one_is_written(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = await _stored(factory)

    outcomes = await asyncio.gather(
        *(_change(factory, contact, name) for name in ("Ada", "Bea", "Cy")),
        return_exceptions=True,
    )

    written = [outcome for outcome in outcomes if isinstance(outcome, Contact)]
    assert len(written) == 1
    assert all(isinstance(outcome, (Contact, ContactChangedError)) for outcome in outcomes)
    async with factory() as uow:
        assert await uow.contacts.get(contact.email_id) == written[0]
    assert await _count(empty_database, pending_acoustic) == 1
    assert await _count(empty_database, newsletters) == 2


async def test_changes_and_sign_ups_of_concurrent_units_share_one_statement(
    empty_database: AsyncEngine, statements: list[str]
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    existing = [await _stored(factory) for _ in range(3)]
    newcomers = [make_contact(newsletters=(make_newsletter("firefox-news"),)) for _ in range(3)]
    units = [factory() for _ in range(6)]
    expected = []
    for uow, contact in zip(units, existing + newcomers, strict=True):
        await uow.__aenter__()
        if contact in existing:
            stored = await uow.contacts.get_versioned(contact.email_id)
            assert stored is not None
            expected.append(_reshaped(stored.contact, f"Name{len(expected)}"))
            await uow.contacts.save(
                expected[-1],
                previous=stored.contact,
                expected_version=stored.version,
                enqueue_at=NOW,
            )
        else:
            expected.append(contact)
            await uow.contacts.add(contact, enqueue_at=NOW)
    statements.clear()

    await asyncio.gather(*(uow.commit() for uow in units))

    assert len(statements) == 1
    for uow in units:
        await uow.__aexit__(None, None, None)
    async with factory() as uow:
        assert [await uow.contacts.get(contact.email_id) for contact in expected] == expected
    assert await _count(empty_database, pending_acoustic) == 6


async def test_a_unit_that_saves_a_contact_twice_writes_both_changes(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = await _stored(factory)

    async with factory() as uow:
        stored = await uow.contacts.get_versioned(contact.email_id)
        assert stored is not None
        once = replace(stored.contact, email=replace(stored.contact.email, first_name="Once"))
        await uow.contacts.save(once, previous=stored.contact, expected_version=stored.version)
        twice = replace(once, email=replace(once.email, last_name="Twice"))
        # The first save went out inside the transaction, its row locked until commit: no version.
        await uow.contacts.save(twice, previous=once, expected_version=None)
        await uow.commit()

    async with factory() as uow:
        assert await uow.contacts.get(contact.email_id) == twice


@pytest.mark.parametrize(
    "criteria",
    [
        pytest.param(lambda contact: {"primary_email": contact.email.primary_email}, id="one"),
        pytest.param(
            lambda contact: {
                "primary_email": contact.email.primary_email,
                "email_id": str(contact.email_id),
            },
            id="several",
        ),
    ],
)
async def test_a_contact_found_by_a_lookup_is_saved_only_if_unchanged_since(
    empty_database: AsyncEngine, criteria: Any
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = await _stored(factory)

    with pytest.raises(ContactChangedError):
        await _save_read_before(
            factory,
            contact,
            lambda: _change(factory, contact, "First"),
            LookupCriteria(**criteria(contact)),
        )

    async with factory() as uow:
        stored = await uow.contacts.get(contact.email_id)
    assert stored is not None and stored.email.first_name == "First"
    assert await _count(empty_database, pending_acoustic) == 1  # the first change's entry only
