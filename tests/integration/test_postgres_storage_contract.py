"""The storage contract on PostgreSQL, plus what only a real database can show: savepoints, locks,
the one-statement read and tolerant reads of odd stored rows."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from msgspec.structs import replace
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.postgres import (
    DatabaseUnavailableError,
    PostgresDatabaseHealth,
    PostgresUnitOfWorkFactory,
    create_engine,
)
from ctms_adapters.postgres.transaction import DriverStatement, TransactionScope
from ctms_core.domain.contact import Amo, Fxa, Mofo
from ctms_core.domain.errors import UniqueConstraintViolation
from ctms_core.domain.lookup import LookupCriteria
from ctms_core.domain.waitlist_rules import WaitlistFieldRule
from ctms_core.ports.repositories import UnitOfWork
from tests.builders import DEFAULT_TIME, make_contact, make_newsletter, make_waitlist
from tests.contracts.storage import (
    AcousticConfigContract,
    ApiClientRepositoryContract,
    ContactRepositoryContract,
    ErasureAuditRepositoryContract,
    RoleRepositoryContract,
    StripeRepositoryContract,
    SyncQueueContract,
    WaitlistFieldRuleContract,
)
from tests.support.database import until_a_backend

pytestmark = pytest.mark.integration


@pytest.fixture
def uow_factory(empty_database: AsyncEngine) -> Callable[[], UnitOfWork]:
    return PostgresUnitOfWorkFactory(empty_database)


class TestPostgresContactRepository(ContactRepositoryContract):
    pass


class TestPostgresApiClientRepository(ApiClientRepositoryContract):
    pass


class TestPostgresRoleRepository(RoleRepositoryContract):
    pass


class TestPostgresErasureAuditRepository(ErasureAuditRepositoryContract):
    pass


class TestPostgresStripeRepository(StripeRepositoryContract):
    pass


async def _committing(uow: UnitOfWork, write: Awaitable[None]) -> None:
    """`write`, then the commit: a storage may send its writes only then (and report a clash there)."""
    await write
    await uow.commit()


async def test_a_conflict_after_earlier_work_keeps_that_work(
    uow_factory: PostgresUnitOfWorkFactory,
) -> None:
    """Inside a transaction that already holds work, a failed add rolls back to its savepoint only.
    Writes go out together when the unit sends them, here at the commit."""
    kept = make_contact(primary_email="kept@example.com")
    async with uow_factory() as uow:
        await uow.contacts.add(kept)
        with pytest.raises(UniqueConstraintViolation) as raised:
            await _committing(uow, uow.contacts.add(make_contact(primary_email="KEPT@example.com")))
        assert raised.value.fields == ("primary_email",)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.contacts.get(kept.email_id) == kept


async def test_a_conflicting_save_under_a_lock_keeps_the_lock_and_earlier_work(
    uow_factory: PostgresUnitOfWorkFactory,
) -> None:
    """The failed save rolls back to its savepoint: the unit still holds its lock and can go on."""
    other = make_contact(primary_email="other@example.com")
    mine = make_contact(primary_email="mine@example.com", newsletters=(make_newsletter("a"),))
    async with uow_factory() as uow:
        await uow.contacts.add(other)
        await uow.contacts.add(mine)
        await uow.commit()
    async with uow_factory() as uow:
        previous = await uow.contacts.get(mine.email_id, for_update=True)
        assert previous is not None
        clashing = replace(
            previous, email=replace(previous.email, primary_email="OTHER@example.com")
        )
        with pytest.raises(UniqueConstraintViolation) as raised:
            await _committing(
                uow, uow.contacts.save(clashing, previous=previous, expected_version=None)
            )
        assert raised.value.fields == ("primary_email",)
        renamed = replace(previous, email=replace(previous.email, first_name="Renamed"))
        await uow.contacts.save(renamed, previous=previous, expected_version=None)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.contacts.get(mine.email_id) == renamed


async def test_a_unit_of_work_goes_on_after_a_failed_first_write(
    uow_factory: PostgresUnitOfWorkFactory,
) -> None:
    """A failed first write rolls its transaction back; the unit can still read and write."""
    holder = make_contact(basket_token="142e20b6-1ef5-43d8-b5f4-597430e956d7")
    async with uow_factory() as uow:
        await uow.contacts.add(holder)
        await uow.commit()
    newcomer = make_contact()
    async with uow_factory() as uow:
        with pytest.raises(UniqueConstraintViolation) as raised:
            await _committing(
                uow, uow.contacts.add(make_contact(basket_token=holder.email.basket_token))
            )
        assert raised.value.fields == ("basket_token",)
        assert await uow.contacts.get(holder.email_id) == holder
        await uow.contacts.add(newcomer)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.contacts.get(newcomer.email_id) == newcomer


async def test_every_clashing_field_is_named_at_once(
    uow_factory: PostgresUnitOfWorkFactory,
) -> None:
    holder = make_contact(
        primary_email="holder@example.com",
        basket_token="142e20b6-1ef5-43d8-b5f4-597430e956d7",
        fxa=Fxa(fxa_id="fxa-held"),
        mofo=Mofo(mofo_email_id="mofo-held"),
    )
    async with uow_factory() as uow:
        await uow.contacts.add(holder)
        await uow.commit()
    rival = make_contact(
        primary_email="Holder@Example.com",
        basket_token=holder.email.basket_token,
        fxa=Fxa(fxa_id="fxa-held"),
        mofo=Mofo(mofo_email_id="mofo-held"),
    )
    async with uow_factory() as uow:
        with pytest.raises(UniqueConstraintViolation) as raised:
            await _committing(uow, uow.contacts.add(rival))
    assert raised.value.fields == ("primary_email", "basket_token", "fxa_id", "mofo_email_id")


async def test_save_keeps_the_row_and_create_timestamp_of_items_that_stay(
    uow_factory: PostgresUnitOfWorkFactory, empty_database: AsyncEngine
) -> None:
    original = make_contact(newsletters=(make_newsletter("a"), make_newsletter("b")))
    async with uow_factory() as uow:
        await uow.contacts.add(original)
        await uow.commit()

    async def newsletter_ids() -> dict[str, int]:
        async with empty_database.connect() as connection:
            rows = await connection.execute(text("SELECT name, id FROM newsletters"))
            return {row.name: row.id for row in rows}

    before = await newsletter_ids()
    later = DEFAULT_TIME + timedelta(days=1)
    updated = replace(
        original,
        newsletters=(
            make_newsletter("a", subscribed=False, update_timestamp=later),
            make_newsletter("b"),
        ),
    )
    async with uow_factory() as uow:
        previous = await uow.contacts.get(original.email_id, for_update=True)
        assert previous is not None
        await uow.contacts.save(updated, previous=previous, expected_version=None)
        await uow.commit()
    assert await newsletter_ids() == before
    async with uow_factory() as uow:
        assert await uow.contacts.get(original.email_id) == updated


async def test_a_locked_read_sees_what_the_previous_lock_holder_committed(
    uow_factory: PostgresUnitOfWorkFactory,
) -> None:
    """Concurrent read-modify-write of one contact loses no update (docs/contract.md §16.3)."""
    contact = make_contact(
        amo=Amo(user_id="1", create_timestamp=DEFAULT_TIME, update_timestamp=DEFAULT_TIME)
    )
    async with uow_factory() as uow:
        await uow.contacts.add(contact)
        await uow.commit()

    first_holds_lock = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with uow_factory() as uow:
            previous = await uow.contacts.get(contact.email_id, for_update=True)
            assert previous is not None and previous.amo is not None
            first_holds_lock.set()
            await release_first.wait()
            changed = replace(previous, amo=replace(previous.amo, username="first"))
            await uow.contacts.save(changed, previous=previous, expected_version=None)
            await uow.commit()

    async def second() -> None:
        await first_holds_lock.wait()
        async with uow_factory() as uow:
            waiting = asyncio.ensure_future(uow.contacts.get(contact.email_id, for_update=True))
            await asyncio.sleep(0.2)
            assert not waiting.done()  # blocked by the first transaction's lock
            release_first.set()
            previous = await waiting
            assert previous is not None and previous.amo is not None
            assert previous.amo.username == "first"
            changed = replace(previous, amo=replace(previous.amo, display_name="second"))
            await uow.contacts.save(changed, previous=previous, expected_version=None)
            await uow.commit()

    await asyncio.gather(first(), second())
    async with uow_factory() as uow:
        final = await uow.contacts.get(contact.email_id)
    assert final is not None and final.amo is not None
    assert (final.amo.username, final.amo.display_name) == ("first", "second")


async def test_odd_stored_rows_still_read(
    uow_factory: PostgresUnitOfWorkFactory, empty_database: AsyncEngine
) -> None:
    """NULL flags read as False, a NULL format as the default, a non-object `fields` as {} (docs/contract.md §4.1)."""
    contact = make_contact(
        amo=Amo(user_id="1", create_timestamp=DEFAULT_TIME, update_timestamp=DEFAULT_TIME),
        fxa=Fxa(fxa_id="f"),
        mofo=Mofo(mofo_contact_id="m"),
        newsletters=(make_newsletter("a"),),
        waitlists=(make_waitlist("w", fields={"geo": "fr"}),),
    )
    async with uow_factory() as uow:
        await uow.contacts.add(contact)
        await uow.commit()
    async with empty_database.begin() as connection:
        for statement in (
            "UPDATE emails SET double_opt_in = NULL, has_opted_out_of_email = NULL,"
            " email_format = NULL",
            'UPDATE amo SET email_opt_in = NULL, "user" = NULL',
            "UPDATE fxa SET account_deleted = NULL",
            "UPDATE mofo SET mofo_relevant = NULL",
            "UPDATE newsletters SET subscribed = NULL, format = NULL",
            "UPDATE waitlists SET fields = '[1, 2]'::jsonb",
        ):
            await connection.execute(text(statement))
    async with uow_factory() as uow:
        loaded = await uow.contacts.get(contact.email_id)
    assert loaded is not None
    assert loaded.email == contact.email
    assert loaded.amo == contact.amo
    assert loaded.fxa == contact.fxa
    assert loaded.mofo == contact.mofo
    assert loaded.newsletters == (replace(contact.newsletters[0], subscribed=False),)
    assert loaded.waitlists == (replace(contact.waitlists[0], fields={}),)


async def test_a_null_mofo_relevance_filters_as_false(
    uow_factory: PostgresUnitOfWorkFactory, empty_database: AsyncEngine
) -> None:
    moment = datetime(2021, 6, 1, tzinfo=UTC)
    contact = make_contact(update_timestamp=moment, mofo=Mofo(mofo_contact_id="m"))
    async with uow_factory() as uow:
        await uow.contacts.add(contact)
        await uow.commit()
    async with empty_database.begin() as connection:
        await connection.execute(text("UPDATE mofo SET mofo_relevant = NULL"))

    async def page(mofo_relevant: bool) -> list[uuid.UUID]:
        async with uow_factory() as uow:
            found = await uow.contacts.updates_page(
                start=moment,
                end=moment + timedelta(days=1),
                after=None,
                limit=10,
                mofo_relevant=mofo_relevant,
            )
        return [c.email_id for c in found]

    assert await page(False) == [contact.email_id]
    assert await page(True) == []


async def test_lookup_without_identifiers_returns_nothing(
    uow_factory: PostgresUnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        await uow.contacts.add(make_contact())
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.contacts.lookup(LookupCriteria()) == []
        assert await uow.contacts.lookup(LookupCriteria(email_id="not-a-uuid")) == []


async def test_deleting_a_contact_removes_all_its_rows(
    uow_factory: PostgresUnitOfWorkFactory, empty_database: AsyncEngine
) -> None:
    contact = make_contact(
        amo=Amo(user_id="1", create_timestamp=DEFAULT_TIME, update_timestamp=DEFAULT_TIME),
        fxa=Fxa(fxa_id="f"),
        mofo=Mofo(mofo_contact_id="m"),
        newsletters=(make_newsletter("a"),),
        waitlists=(make_waitlist("w"),),
    )
    async with uow_factory() as uow:
        await uow.contacts.add(contact)
        await uow.commit()
    async with uow_factory() as uow:
        await uow.contacts.delete(contact.email_id)
        await uow.commit()
    async with empty_database.connect() as connection:
        for table in ("emails", "amo", "fxa", "mofo", "newsletters", "waitlists"):
            count = await connection.scalar(text(f"SELECT count(*) FROM {table}"))
            assert count == 0, table


async def test_the_contact_count_is_never_negative(empty_database: AsyncEngine) -> None:
    health = PostgresDatabaseHealth(empty_database)
    await health.ping()
    assert await health.estimate_contact_count() == 0
    factory = PostgresUnitOfWorkFactory(empty_database)
    async with factory() as uow:
        for _ in range(3):
            await uow.contacts.add(make_contact())
        await uow.commit()
    assert await health.estimate_contact_count() == 3


async def test_a_dropped_connection_fails_one_unit_of_work_and_the_next_reconnects(
    database_url: str, empty_database: AsyncEngine
) -> None:
    """After a database restart the service recovers by itself (docs/contract.md §16.3 reliability)."""
    engine = create_engine(
        database_url, pool_size=1, max_overflow=0, pool_timeout=5, pool_recycle=-1, echo=False
    )
    try:
        factory = PostgresUnitOfWorkFactory(engine)
        async with engine.connect() as connection:  # the pool's only connection
            backend = await connection.scalar(text("SELECT pg_backend_pid()"))
        async with empty_database.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            for _ in range(100):
                alive = await admin.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": backend}
                )
                if not alive:
                    break
                await asyncio.sleep(0.05)
        with pytest.raises(DatabaseUnavailableError):
            async with factory() as uow:
                await uow.contacts.get(uuid.uuid4())
        async with factory() as uow:
            assert await uow.contacts.get(uuid.uuid4()) is None
    finally:
        await engine.dispose()


async def test_an_exhausted_pool_reports_the_database_unavailable(database_url: str) -> None:
    """Every way of not reaching the database is an OSError: the HTTP layer answers 503."""
    engine = create_engine(
        database_url, pool_size=1, max_overflow=0, pool_timeout=1, pool_recycle=-1, echo=False
    )
    try:
        factory = PostgresUnitOfWorkFactory(engine)
        async with factory() as holder:
            await holder.contacts.get(uuid.uuid4(), for_update=True)  # holds the only connection
            with pytest.raises(DatabaseUnavailableError):
                async with factory() as uow:
                    await uow.contacts.get(uuid.uuid4())
        async with factory() as uow:
            assert await uow.contacts.get(uuid.uuid4()) is None
    finally:
        await engine.dispose()


async def test_a_refused_connection_is_an_os_error() -> None:
    engine = create_engine(
        "postgresql+asyncpg://ctms@127.0.0.1:1/ctms",
        pool_size=1,
        max_overflow=0,
        pool_timeout=1,
        pool_recycle=-1,
        echo=False,
    )
    try:
        with pytest.raises(ConnectionRefusedError):
            async with PostgresUnitOfWorkFactory(engine)() as uow:
                await uow.contacts.get(uuid.uuid4())
        with pytest.raises(ConnectionRefusedError):
            await PostgresDatabaseHealth(engine).ping()
    finally:
        await engine.dispose()


def _migration(name: str) -> Any:
    path = Path(__file__).parents[2] / "migrations" / "versions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def seeded_uow_factory(empty_database: AsyncEngine) -> Callable[[], UnitOfWork]:
    """The emptied database with the rows migrations 0005 and 0008 seed (their own constants)."""
    migration = _migration("0005_acoustic_sync")
    rules = _migration("0008_waitlist_field_rules").SEEDED_RULES
    factory = PostgresUnitOfWorkFactory(empty_database)
    async with factory() as uow:
        for field in migration.MAIN_FIELDS:
            await uow.acoustic_config.add_field("main", field)
        for field in migration.WAITLIST_FIELDS:
            await uow.acoustic_config.add_field("waitlist", field)
        for source, destination in migration.NEWSLETTER_MAPPING.items():
            await uow.acoustic_config.add_newsletter_mapping(source, destination)
        for waitlist, field, max_length, required in rules:
            await uow.waitlist_rules.set(
                WaitlistFieldRule(
                    waitlist=waitlist, field=field, max_length=max_length, required=required
                )
            )
        await uow.commit()
    return factory


class TestPostgresSyncQueue(SyncQueueContract):
    pass


class TestPostgresAcousticConfig(AcousticConfigContract):
    pass


async def test_write_transactions_plan_generically_and_reads_keep_postgres_default(
    engine: AsyncEngine,
) -> None:
    """Writes are re-planned for nothing on every execution otherwise (ADR 0002); reads keep the
    server's own plan choice, before and after a transaction."""
    setting = DriverStatement(select(func.current_setting("plan_cache_mode")))
    scope = TransactionScope(engine)
    try:
        default = (await scope.rows(setting, {}))[0][0]
        assert default != "force_generic_plan"
        await scope.begin()
        assert (await scope.execute(setting, {}))[0][0] == "force_generic_plan"
        await scope.commit()
        assert (await scope.rows(setting, {}))[0][0] == default
        await scope.lock()
        assert (await scope.execute(setting, {}))[0][0] == "force_generic_plan"
        await scope.rollback()
        assert (await scope.rows(setting, {}))[0][0] == default
    finally:
        await scope.close(None)


async def test_a_transaction_on_an_invalidated_connection_reports_the_database_unavailable(
    engine: AsyncEngine,
) -> None:
    """A 503 for the client, as for any connection that broke (never a 500)."""
    scope = TransactionScope(engine)
    connection = await scope.connection()
    await connection.invalidate()
    with pytest.raises(DatabaseUnavailableError):
        await scope.begin()
    await scope.close(None)


async def test_a_unit_of_work_rolls_back_a_transaction_its_connection_was_left_in(
    database_url: str,
) -> None:
    """SQLAlchemy's checkin does not roll back the driver's own transactions; a connection that came
    back inside one (here an aborted one) must not fail the next unit of work."""
    engine = create_engine(
        database_url, pool_size=1, max_overflow=0, pool_timeout=10, pool_recycle=-1, echo=False
    )
    try:
        async with engine.connect() as connection:  # the pool's only connection
            driver = connection.sync_connection.connection.driver_connection
            await driver.execute("BEGIN")
            with pytest.raises(asyncpg.PostgresError):
                await driver.execute("SELECT 1 / 0")
        async with PostgresUnitOfWorkFactory(engine)() as uow:
            assert await uow.contacts.get(uuid.uuid4()) is None
    finally:
        await engine.dispose()


async def test_a_locking_read_that_waited_sees_what_the_previous_lock_holder_committed(
    uow_factory: PostgresUnitOfWorkFactory, empty_database: AsyncEngine
) -> None:
    """The lock and the read are one statement whose snapshot predates the wait; a contact changed
    meanwhile is read again, so a save based on it cannot undo the other transaction's change."""
    original = make_contact(newsletters=(make_newsletter("a"),))
    async with uow_factory() as uow:
        await uow.contacts.add(original)
        await uow.commit()

    async def locked_read() -> Any:
        async with uow_factory() as uow:
            return await uow.contacts.get(original.email_id, for_update=True)

    async with uow_factory() as holder:
        previous = await holder.contacts.get(original.email_id, for_update=True)
        assert previous is not None
        changed = replace(
            previous,
            email=replace(previous.email, update_timestamp=DEFAULT_TIME + timedelta(hours=1)),
            newsletters=(*previous.newsletters, make_newsletter("b")),
        )
        await holder.contacts.save(changed, previous=previous, expected_version=None)
        waiting = asyncio.create_task(locked_read())
        await until_a_backend(empty_database, "wait_event_type = 'Lock'", "the wait for the lock")
        await holder.commit()

    assert await waiting == changed


class TestPostgresWaitlistFieldRules(WaitlistFieldRuleContract):
    pass
