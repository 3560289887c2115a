"""Concurrent contact reads outside a transaction share statements (`ReadCoalescer`) without changing
what any reader sees: its own contact, everything committed before it asked, its own uncommitted writes
inside a transaction, and an error only when its own key is at fault."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import ARRAY, String, bindparam, event, exc, func, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import PostgresUnitOfWorkFactory
from ctms_adapters.postgres.coalescing import KeyedRead, ReadCoalescer
from ctms_adapters.postgres.tables import emails
from ctms_adapters.postgres.transaction import TransactionScope
from ctms_core.domain.contact import Contact
from ctms_core.domain.lookup import LookupCriteria
from tests.builders import make_contact, make_newsletter
from tests.support.database import until_a_backend

pytestmark = pytest.mark.integration


def _contacts(count: int) -> list[Contact]:
    return [
        make_contact(
            email_id=uuid.uuid4(),
            primary_email=f"Reader{number}@example.com",
            basket_token=str(uuid.uuid4()),
            newsletters=(make_newsletter("firefox-news"), make_newsletter(f"list-{number}")),
        )
        for number in range(count)
    ]


async def _store(factory: PostgresUnitOfWorkFactory, contacts: list[Contact]) -> None:
    async with factory() as uow:
        for contact in contacts:
            await uow.contacts.add(contact)
        await uow.commit()


@pytest.fixture
def checkouts(empty_database: AsyncEngine) -> Iterator[list[object]]:
    """Every checkout of a pooled connection while the test runs."""
    seen: list[object] = []

    def count(*_: object) -> None:
        seen.append(object())

    pool = empty_database.sync_engine.pool
    event.listen(pool, "checkout", count)
    yield seen
    event.remove(pool, "checkout", count)


async def test_concurrent_readers_each_get_their_own_contact_from_one_statement_per_kind(
    empty_database: AsyncEngine, checkouts: list[object]
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contacts = _contacts(30)
    await _store(factory, contacts)
    checkouts.clear()

    async def by_id(email_id: uuid.UUID) -> Contact | None:
        async with factory() as uow:
            return await uow.contacts.get(email_id)

    async def by_address(address: str) -> list[Contact]:
        async with factory() as uow:
            return await uow.contacts.lookup(LookupCriteria(primary_email=address))

    unknown = uuid.uuid4()
    results = await asyncio.gather(
        *(by_id(contact.email.email_id) for contact in contacts),
        *(by_address(contact.email.primary_email.upper()) for contact in contacts),
        by_id(contacts[0].email.email_id),  # the same key twice in one batch
        by_id(unknown),
        by_address("nobody@example.com"),
    )

    assert results[:30] == contacts
    assert results[30:60] == [[contact] for contact in contacts]
    assert results[60:] == [contacts[0], None, []]
    # 63 readers, two kinds of read: two statements, two connections checked out.
    assert len(checkouts) == 2


async def test_a_reader_sees_what_was_committed_before_it_asked_even_while_a_statement_is_in_flight(
    empty_database: AsyncEngine,
) -> None:
    """A reader who asks while a batch is in flight waits for the next statement instead of joining the
    one whose snapshot predates its question."""
    slow_count = KeyedRead(
        "slow contact count",
        select(
            func.unnest(bindparam(KeyedRead.KEYS, type_=ARRAY(String()))).label("key"),
            select(func.count()).select_from(emails).scalar_subquery(),
        ).where(select(literal(True)).select_from(func.pg_sleep(0.5)).scalar_subquery()),
    )
    coalescer = ReadCoalescer(functools.partial(TransactionScope, empty_database))
    factory = PostgresUnitOfWorkFactory(empty_database)
    first = asyncio.create_task(coalescer.rows(slow_count, "first"))
    await until_a_backend(
        empty_database,
        "state = 'active' AND query LIKE '%pg_sleep%'",
        "the first statement's start",
    )
    await _store(factory, _contacts(1))

    (second,) = await coalescer.rows(slow_count, "second")

    ((_, count_before),) = await first
    assert count_before == 0
    assert second[1] == 1


async def test_inside_a_transaction_a_read_sees_the_units_own_uncommitted_writes(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    (contact,) = _contacts(1)
    async with factory() as uow:
        await uow.contacts.add(contact)
        assert await uow.contacts.get(contact.email.email_id) == contact
        assert await uow.contacts.lookup(
            LookupCriteria(primary_email=contact.email.primary_email)
        ) == [contact]
    async with factory() as uow:  # never committed
        assert await uow.contacts.get(contact.email.email_id) is None


async def test_a_key_the_database_rejects_fails_only_its_own_readers(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contacts = _contacts(3)
    await _store(factory, contacts)

    async def by_address(address: str) -> list[Contact]:
        async with factory() as uow:
            return await uow.contacts.lookup(LookupCriteria(primary_email=address))

    results = await asyncio.gather(
        by_address(contacts[0].email.primary_email),
        by_address("nul\x00@example.com"),  # PostgreSQL text cannot hold U+0000
        by_address(contacts[2].email.primary_email),
        return_exceptions=True,
    )

    assert results[0] == [contacts[0]]
    assert isinstance(results[1], exc.DBAPIError)
    assert results[2] == [contacts[2]]


async def test_a_reader_that_gives_up_does_not_disturb_the_others(
    empty_database: AsyncEngine,
) -> None:
    factory = PostgresUnitOfWorkFactory(empty_database)
    contacts = _contacts(3)
    await _store(factory, contacts)

    async def by_id(email_id: uuid.UUID) -> Contact | None:
        async with factory() as uow:
            return await uow.contacts.get(email_id)

    readers = [asyncio.create_task(by_id(contact.email.email_id)) for contact in contacts]
    await asyncio.sleep(0)  # every reader is waiting for the batch
    readers[1].cancel()

    assert await readers[0] == contacts[0]
    assert await readers[2] == contacts[2]
    with pytest.raises(asyncio.CancelledError):
        await readers[1]
    assert await by_id(contacts[1].email.email_id) == contacts[1]
