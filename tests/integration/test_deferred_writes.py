"""A unit of work holds its contact write and queue entry back and sends them as one statement
(`PendingWrites`): a sign-up is one round trip in autocommit, a PATCH one statement fewer, and
nothing changes in what is stored or what a unit reads."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from msgspec.structs import replace
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import PostgresUnitOfWorkFactory
from ctms_adapters.postgres.acoustic_tables import pending_acoustic
from ctms_core.domain.contact import Contact
from ctms_core.domain.errors import UniqueConstraintViolation
from tests.builders import make_contact, make_newsletter

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def _queued(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            (
                await connection.execute(select(func.count()).select_from(pending_acoustic))
            ).scalar_one()
        )


async def _sign_up(factory: PostgresUnitOfWorkFactory, contact: Contact) -> None:
    async with factory() as uow:
        await uow.contacts.add(contact, enqueue_at=NOW)
        await uow.commit()


async def test_a_new_contact_and_its_queue_entry_are_one_statement_without_begin_or_commit(
    empty_database: AsyncEngine, statements: list[str]
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = make_contact(newsletters=(make_newsletter("firefox-news"),))

    await _sign_up(factory, contact)

    assert len(statements) == 1
    assert "pending_acoustic" in statements[0] and "INSERT INTO emails" in statements[0]
    async with factory() as uow:
        assert await uow.contacts.get(contact.email_id) == contact
    assert await _queued(empty_database) == 1


async def test_a_locked_change_sends_its_save_and_queue_entry_together(
    empty_database: AsyncEngine, statements: list[str]
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = make_contact(newsletters=(make_newsletter("firefox-news"),))
    async with factory() as uow:
        await uow.contacts.add(contact)
        await uow.commit()
    statements.clear()

    async with factory() as uow:
        previous = await uow.contacts.get(contact.email_id, for_update=True)
        assert previous is not None
        changed = replace(previous, email=replace(previous.email, first_name="Jo"))
        await uow.contacts.save(changed, previous=previous, expected_version=None, enqueue_at=NOW)
        await uow.commit()

    # BEGIN, the row lock with the read, the save with its queue entry, COMMIT.
    assert len(statements) == 4
    assert statements[0].startswith("BEGIN") and statements[-1] == "COMMIT"
    async with factory() as uow:
        assert await uow.contacts.get(contact.email_id) == changed


async def test_deferred_writes_of_a_unit_that_does_not_commit_leave_nothing(
    empty_database: AsyncEngine, statements: list[str]
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contact = make_contact()

    async with factory() as uow:
        await uow.contacts.add(contact, enqueue_at=NOW)

    assert statements == []  # never sent
    async with factory() as uow:
        assert await uow.contacts.get(contact.email_id) is None
    assert await _queued(empty_database) == 0


async def test_a_clash_found_at_commit_leaves_neither_the_contact_nor_its_queue_entry(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    holder = make_contact(primary_email="taken@example.com")
    async with factory() as uow:
        await uow.contacts.add(holder)
        await uow.commit()
    rival = make_contact(email_id=uuid.uuid4(), primary_email="TAKEN@example.com")

    async with factory() as uow:
        await uow.contacts.add(rival, enqueue_at=NOW)
        with pytest.raises(UniqueConstraintViolation) as raised:
            await uow.commit()

    assert raised.value.fields == ("primary_email",)
    async with factory() as uow:
        assert await uow.contacts.get(rival.email_id) is None
    assert await _queued(empty_database) == 0


async def test_a_second_write_to_the_same_tables_sends_the_first_inside_the_transaction(
    empty_database: AsyncEngine,
) -> None:
    """Parts of one statement do not see each other's effects, so writes to the same tables never
    share one; the unit stays atomic either way."""
    factory = PostgresUnitOfWorkFactory(empty_database)
    first, second = make_contact(), make_contact()
    async with factory() as uow:
        await uow.contacts.add(first)
        await uow.contacts.add(second)
        await uow.rollback()
    async with factory() as uow:
        assert await uow.contacts.get(first.email_id) is None
        await uow.contacts.add(first)
        await uow.contacts.add(second)
        await uow.commit()
    async with factory() as uow:
        assert await uow.contacts.get(first.email_id) == first
        assert await uow.contacts.get(second.email_id) == second


async def test_concurrent_sign_ups_are_committed_by_one_statement(
    empty_database: AsyncEngine, statements: list[str]
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contacts = [
        make_contact(
            email_id=uuid.uuid4(),
            primary_email=f"signup{number}@example.com",
            newsletters=(make_newsletter("firefox-news"),) if number % 2 else (),
        )
        for number in range(20)
    ]

    await asyncio.gather(*(_sign_up(factory, contact) for contact in contacts))

    assert len(statements) == 1
    async with factory() as uow:
        assert [await uow.contacts.get(contact.email_id) for contact in contacts] == contacts
    assert await _queued(empty_database) == 20


async def test_a_sign_up_that_clashes_fails_alone_and_the_others_of_its_statement_commit(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    holder = make_contact(primary_email="taken@example.com")
    await _sign_up(factory, holder)
    first, second = make_contact(email_id=uuid.uuid4()), make_contact(email_id=uuid.uuid4())
    rival = make_contact(email_id=uuid.uuid4(), primary_email="Taken@Example.com")
    twin = replace(second, email=replace(second.email, primary_email="twin@example.com"))

    outcomes = await asyncio.gather(
        _sign_up(factory, first),
        _sign_up(factory, rival),
        _sign_up(factory, second),
        _sign_up(factory, twin),  # the same email_id as `second`, in the same statement
        return_exceptions=True,
    )

    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], UniqueConstraintViolation)
    assert outcomes[1].fields == ("primary_email",)
    assert isinstance(outcomes[3], UniqueConstraintViolation)
    assert outcomes[3].fields == ("email_id",)
    async with factory() as uow:
        assert await uow.contacts.get(first.email_id) == first
        assert await uow.contacts.get(second.email_id) == second
        assert await uow.contacts.get(rival.email_id) is None
    assert await _queued(empty_database) == 3  # holder, first, second
