"""A save of a contact read without a lock is optimistic (`PostgresContactRepository.save`): it writes only
if the contact is still the version the unit read, else nothing of it — queue entry included — and the
unit's commit raises `ContactChangedError`. Such a unit needs no transaction: one read, shared with other
readers, and one write statement, shared with other units' writes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
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


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every statement sent to PostgreSQL through asyncpg while the test runs."""
    sent: list[str] = []
    for method in ("fetch", "execute"):
        original = getattr(asyncpg.Connection, method)

        async def counting(
            self: Any, query: str, *args: Any, _original: Any = original, **kw: Any
        ) -> Any:
            sent.append(query)
            return await _original(self, query, *args, **kw)

        monkeypatch.setattr(asyncpg.Connection, method, counting)
    return sent


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
        previous = await uow.contacts.get(contact.email_id)
        assert previous is not None
        changed = _reshaped(previous, name)
        await uow.contacts.save(changed, previous=previous)
        await uow.sync_queue.enqueue(contact.email_id, NOW)
        await uow.commit()
    return changed


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

    async with factory() as late:
        previous = await late.contacts.get(contact.email_id)
        assert previous is not None
        async with factory() as first:  # commits between the late unit's read and its save
            locked = await first.contacts.get(contact.email_id, for_update=True)
            assert locked is not None
            winner = replace(locked, email=replace(locked.email, last_name="First"))
            await first.contacts.save(winner, previous=locked)
            await first.commit()
        await late.contacts.save(_reshaped(previous, "Late"), previous=previous)
        await late.sync_queue.enqueue(contact.email_id, NOW)
        with pytest.raises(ContactChangedError):
            await late.commit()

    async with factory() as uow:
        assert await uow.contacts.get(contact.email_id) == winner
    assert await _count(empty_database, pending_acoustic) == 0
    assert await _count(empty_database, amo) == 1
    assert await _count(empty_database, newsletters) == 2


async def test_a_save_of_a_contact_deleted_since_it_was_read_leaves_no_rows(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = await _stored(factory)

    async with factory() as late:
        previous = await late.contacts.get(contact.email_id)
        assert previous is not None
        async with factory() as eraser:
            await eraser.contacts.delete(contact.email_id)
            await eraser.commit()
        await late.contacts.save(_reshaped(previous, "Late"), previous=previous)
        await late.sync_queue.enqueue(contact.email_id, NOW)
        with pytest.raises(ContactChangedError):
            await late.commit()

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
        previous = await uow.contacts.get(contact.email_id)
        assert previous is not None
        changes.append(_reshaped(previous, name))
        await uow.contacts.save(changes[-1], previous=previous)
        await uow.sync_queue.enqueue(contact.email_id, NOW)
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
            previous = await uow.contacts.get(contact.email_id)
            assert previous is not None
            expected.append(_reshaped(previous, f"Name{len(expected)}"))
            await uow.contacts.save(expected[-1], previous=previous)
        else:
            expected.append(contact)
            await uow.contacts.add(contact)
        await uow.sync_queue.enqueue(contact.email_id, NOW)
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
        previous = await uow.contacts.get(contact.email_id)
        assert previous is not None
        once = replace(previous, email=replace(previous.email, first_name="Once"))
        await uow.contacts.save(once, previous=previous)
        twice = replace(once, email=replace(once.email, last_name="Twice"))
        await uow.contacts.save(twice, previous=once)
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

    async with factory() as late:
        (previous,) = await late.contacts.lookup(LookupCriteria(**criteria(contact)))
        await _change(factory, contact, "First")  # commits between the lookup and the save
        await late.contacts.save(_reshaped(previous, "Late"), previous=previous)
        with pytest.raises(ContactChangedError):
            await late.commit()

    async with factory() as uow:
        stored = await uow.contacts.get(contact.email_id)
    assert stored is not None and stored.email.first_name == "First"
