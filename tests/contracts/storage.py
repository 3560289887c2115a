"""The storage port contract, written once and run against every adapter.

A test module subclasses `ContactRepositoryContract`, `ApiClientRepositoryContract`,
`RoleRepositoryContract`, `ErasureAuditRepositoryContract`, ... and `WaitlistFieldRuleContract` and provides a
`uow_factory` fixture (a callable returning a fresh `UnitOfWork` over an empty store): the in-memory adapter
runs it in tests/unit, the PostgreSQL adapter in tests/integration. Same tests, same expectations.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from msgspec.structs import replace

from ctms_core.domain.acoustic import AcousticDeletion, default_configuration
from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.contact import Amo, Contact, Fxa, Mofo
from ctms_core.domain.erasure import ErasureRecord
from ctms_core.domain.errors import ContactChangedError, UniqueConstraintViolation
from ctms_core.domain.lookup import LookupCriteria
from ctms_core.domain.permissions import Permission, Role
from ctms_core.domain.stripe import (
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLineItem,
    StripePrice,
    StripeSubscription,
    StripeSubscriptionItem,
)
from ctms_core.domain.sync import PendingSync, QueueCounts
from ctms_core.domain.updates import Cursor
from ctms_core.domain.waitlist_rules import SEEDED_WAITLIST_FIELD_RULES, WaitlistFieldRule
from ctms_core.ports.repositories import StoredContact, UnitOfWork
from tests.builders import (
    DEFAULT_TIME,
    contact_from_body,
    make_contact,
    make_newsletter,
    make_waitlist,
)
from tests.samples import sample

UowFactory = Callable[[], UnitOfWork]
# When the contact writes of the guard cases queue their contact.
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


async def _store(uow_factory: UowFactory, *contacts: Contact) -> None:
    async with uow_factory() as uow:
        for contact in contacts:
            await uow.contacts.add(contact)
        await uow.commit()


async def _load(uow_factory: UowFactory, email_id: uuid.UUID) -> Contact | None:
    async with uow_factory() as uow:
        return await uow.contacts.get(email_id)


async def _version(uow_factory: UowFactory, email_id: uuid.UUID) -> str | None:
    """The version of the contact a unit of work reads without a lock (None: no such contact)."""
    async with uow_factory() as uow:
        stored = await uow.contacts.get_versioned(email_id)
    return None if stored is None else stored.version


async def _queued(uow_factory: UowFactory) -> int:
    async with uow_factory() as uow:
        return (await uow.sync_queue.counts("acoustic")).backlog


class ContactRepositoryContract:
    async def test_a_stored_contact_reads_back_identically(self, uow_factory: UowFactory) -> None:
        contact = contact_from_body(sample("maximal"))
        await _store(uow_factory, contact)
        assert await _load(uow_factory, contact.email_id) == contact

    async def test_microseconds_and_utc_offsets_survive_storage(
        self, uow_factory: UowFactory
    ) -> None:
        moment = datetime(2020, 12, 5, 19, 21, 50, 908000, tzinfo=UTC)
        contact = make_contact(create_timestamp=moment, update_timestamp=moment)
        await _store(uow_factory, contact)
        loaded = await _load(uow_factory, contact.email_id)
        assert loaded is not None
        assert loaded.email.update_timestamp == moment
        assert loaded.email.update_timestamp.utcoffset() == timedelta(0)

    async def test_unknown_contact_reads_as_none(self, uow_factory: UowFactory) -> None:
        assert await _load(uow_factory, uuid.uuid4()) is None

    async def test_work_left_uncommitted_leaves_no_trace(self, uow_factory: UowFactory) -> None:
        contact = make_contact()
        async with uow_factory() as uow:
            await uow.contacts.add(contact)
        assert await _load(uow_factory, contact.email_id) is None

    async def test_rollback_discards_changes(self, uow_factory: UowFactory) -> None:
        contact = make_contact()
        async with uow_factory() as uow:
            await uow.contacts.add(contact)
            await uow.rollback()
        assert await _load(uow_factory, contact.email_id) is None

    async def test_a_taken_email_id_is_a_unique_violation(self, uow_factory: UowFactory) -> None:
        contact = make_contact()
        await _store(uow_factory, contact)
        clone = replace(contact, email=replace(contact.email, primary_email="other@example.com"))
        with pytest.raises(UniqueConstraintViolation) as raised:
            await _store(uow_factory, clone)
        assert "email_id" in raised.value.fields

    @pytest.mark.parametrize(
        ("field", "build"),
        [
            (
                "primary_email",
                lambda: make_contact(primary_email="Same.Person@Example.com"),
            ),
            (
                "basket_token",
                lambda: make_contact(basket_token="142e20b6-1ef5-43d8-b5f4-597430e956d7"),
            ),
            ("fxa_id", lambda: make_contact(fxa=Fxa(fxa_id="fxa-1"))),
            ("mofo_email_id", lambda: make_contact(mofo=Mofo(mofo_email_id="mofo-1"))),
        ],
    )
    async def test_each_unique_identifier_is_enforced(
        self, uow_factory: UowFactory, field: str, build: Callable[[], Contact]
    ) -> None:
        first = build()
        second = build()
        if field == "primary_email":
            second = replace(
                second, email=replace(second.email, primary_email="same.person@example.COM")
            )
        await _store(uow_factory, first)
        with pytest.raises(UniqueConstraintViolation) as raised:
            await _store(uow_factory, second)
        assert field in raised.value.fields
        assert await _load(uow_factory, second.email_id) is None

    async def test_primary_email_uniqueness_folds_non_ascii_case(
        self, uow_factory: UowFactory
    ) -> None:
        await _store(uow_factory, make_contact(primary_email="émile@example.com"))
        with pytest.raises(UniqueConstraintViolation):
            await _store(uow_factory, make_contact(primary_email="ÉMILE@example.com"))

    async def test_find_conflicts_names_every_clashing_field(self, uow_factory: UowFactory) -> None:
        holder = make_contact(
            primary_email="taken@example.com",
            basket_token="142e20b6-1ef5-43d8-b5f4-597430e956d7",
            fxa=Fxa(fxa_id="fxa-taken"),
        )
        await _store(uow_factory, holder)
        candidate = make_contact(
            primary_email="TAKEN@example.com",
            basket_token="142e20b6-1ef5-43d8-b5f4-597430e956d7",
            fxa=Fxa(fxa_id="fxa-free"),
        )
        async with uow_factory() as uow:
            conflicts = await uow.contacts.find_conflicts(candidate)
        assert sorted(conflicts) == ["basket_token", "primary_email"]

    async def test_save_replaces_children_and_deletes_dropped_ones(
        self, uow_factory: UowFactory
    ) -> None:
        original = make_contact(
            amo=Amo(user_id="1", create_timestamp=DEFAULT_TIME, update_timestamp=DEFAULT_TIME),
            fxa=Fxa(fxa_id="fxa-1"),
            mofo=Mofo(mofo_contact_id="m-1"),
            newsletters=(make_newsletter("a"), make_newsletter("b")),
            waitlists=(make_waitlist("vpn", fields={"geo": "fr"}), make_waitlist("relay")),
        )
        await _store(uow_factory, original)
        later = DEFAULT_TIME + timedelta(hours=1)
        updated = replace(
            original,
            email=replace(original.email, first_name="Zoë", update_timestamp=later),
            amo=None,
            fxa=Fxa(fxa_id="fxa-2", lang="fr"),
            mofo=None,
            newsletters=(
                make_newsletter("b", subscribed=False, update_timestamp=later),
                make_newsletter("c", create_timestamp=later, update_timestamp=later),
            ),
            waitlists=(make_waitlist("vpn", fields={"geo": "de", "n": [1, 2]}),),
        )
        async with uow_factory() as uow:
            await uow.contacts.save(updated, previous=original, expected_version=None)
            await uow.commit()
        assert await _load(uow_factory, original.email_id) == updated

    async def test_save_that_breaks_uniqueness_changes_nothing(
        self, uow_factory: UowFactory
    ) -> None:
        other = make_contact(primary_email="other@example.com")
        mine = make_contact(primary_email="mine@example.com", newsletters=(make_newsletter("a"),))
        await _store(uow_factory, other, mine)
        clashing = replace(
            mine,
            email=replace(mine.email, primary_email="OTHER@example.com"),
            newsletters=(),
        )
        with pytest.raises(UniqueConstraintViolation) as raised:  # noqa: PT012 - the commit is part of it
            async with uow_factory() as uow:
                await uow.contacts.save(clashing, previous=mine, expected_version=None)
                await uow.commit()
        assert raised.value.fields == ("primary_email",)
        assert await _load(uow_factory, mine.email_id) == mine

    # --- the guard of a save: `expected_version` ------------------------------------------------------

    async def test_a_save_expecting_the_version_read_writes_the_contact_and_its_queue_entry(
        self, uow_factory: UowFactory
    ) -> None:
        original = make_contact(newsletters=(make_newsletter("a"),))
        await _store(uow_factory, original)
        changed = replace(original, email=replace(original.email, first_name="Read"))
        async with uow_factory() as uow:
            stored = await uow.contacts.get_versioned(original.email_id)
            assert stored is not None and stored.contact == original
            assert stored.version is not None
            await uow.contacts.save(
                changed, previous=stored.contact, expected_version=stored.version, enqueue_at=NOW
            )
            await uow.commit()
        assert await _load(uow_factory, original.email_id) == changed
        assert await _queued(uow_factory) == 1

    async def test_a_finished_unit_of_work_leaves_no_reference_cycle(
        self, uow_factory: UowFactory
    ) -> None:
        """A unit is freed when it ends, not later by the garbage collector (a cycle per request made the
        collector run several times as often; docs/performance.md, "The #17 redesign")."""
        original = make_contact(newsletters=(make_newsletter("a"),))
        await _store(uow_factory, original)  # also opens what the adapter keeps (pool connections)
        changed = replace(original, email=replace(original.email, first_name="Read"))
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            await _load(uow_factory, original.email_id)
            async with uow_factory() as uow:
                stored = await uow.contacts.get_versioned(original.email_id)
                assert stored is not None
                await uow.contacts.save(
                    changed,
                    previous=stored.contact,
                    expected_version=stored.version,
                    enqueue_at=NOW,
                )
                await uow.commit()
            del uow, stored
            gc.collect()
            left = sorted(
                {type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("ctms_")}
            )
        finally:
            gc.garbage.clear()
            gc.set_debug(0)
            gc.enable()
        assert left == []

    async def test_every_write_of_a_contact_gives_it_a_new_version(
        self, uow_factory: UowFactory
    ) -> None:
        original = make_contact()
        await _store(uow_factory, original)
        before = await _version(uow_factory, original.email_id)
        async with uow_factory() as uow:
            changed = replace(original, email=replace(original.email, first_name="New"))
            await uow.contacts.save(changed, previous=original, expected_version=before)
            await uow.commit()
        assert await _version(uow_factory, original.email_id) not in (before, None)

    async def test_a_save_expecting_a_version_another_write_replaced_writes_nothing(
        self, uow_factory: UowFactory
    ) -> None:
        """The race a PATCH can lose: another unit of work saved the contact between this one's read
        and its save."""
        original = make_contact(newsletters=(make_newsletter("a"),))
        await _store(uow_factory, original)
        read = await _version(uow_factory, original.email_id)
        winner = replace(original, email=replace(original.email, last_name="Winner"))
        async with uow_factory() as uow:
            await uow.contacts.save(winner, previous=original, expected_version=read)
            await uow.commit()
        loser = replace(
            original,
            email=replace(original.email, first_name="Loser"),
            newsletters=(make_newsletter("b"),),
        )

        with pytest.raises(ContactChangedError):  # noqa: PT012 - the commit is part of it
            async with uow_factory() as uow:
                await uow.contacts.save(
                    loser, previous=original, expected_version=read, enqueue_at=NOW
                )
                await uow.commit()

        assert await _load(uow_factory, original.email_id) == winner
        assert await _queued(uow_factory) == 0  # the queue entry is part of the refused save

    async def test_a_save_expecting_the_version_of_a_deleted_contact_writes_nothing(
        self, uow_factory: UowFactory
    ) -> None:
        original = make_contact(newsletters=(make_newsletter("a"),))
        await _store(uow_factory, original)
        read = await _version(uow_factory, original.email_id)
        async with uow_factory() as uow:
            await uow.contacts.delete(original.email_id)
            await uow.commit()
        changed = replace(original, email=replace(original.email, first_name="Ghost"))

        with pytest.raises(ContactChangedError):  # noqa: PT012 - the commit is part of it
            async with uow_factory() as uow:
                await uow.contacts.save(
                    changed, previous=original, expected_version=read, enqueue_at=NOW
                )
                await uow.commit()

        assert await _load(uow_factory, original.email_id) is None
        assert await _queued(uow_factory) == 0

    async def test_a_contact_read_under_its_lock_has_no_version_to_expect(
        self, uow_factory: UowFactory
    ) -> None:
        original = make_contact()
        await _store(uow_factory, original)
        changed = replace(original, email=replace(original.email, first_name="Locked"))
        async with uow_factory() as uow:
            stored = await uow.contacts.get_versioned(original.email_id, for_update=True)
            assert stored == StoredContact(original, None)
            await uow.contacts.save(
                changed, previous=stored.contact, expected_version=None, enqueue_at=NOW
            )
            await uow.commit()
        assert await _load(uow_factory, original.email_id) == changed
        assert await _queued(uow_factory) == 1

    async def test_a_new_contact_is_written_with_its_queue_entry(
        self, uow_factory: UowFactory
    ) -> None:
        contact = make_contact()
        async with uow_factory() as uow:
            await uow.contacts.add(contact, enqueue_at=NOW)
            await uow.commit()
        assert await _load(uow_factory, contact.email_id) == contact
        assert await _queued(uow_factory) == 1

    async def test_delete_removes_the_contact_and_only_it(self, uow_factory: UowFactory) -> None:
        doomed = contact_from_body(sample("maximal"))
        kept = contact_from_body(sample("minimal"))
        await _store(uow_factory, doomed, kept)
        async with uow_factory() as uow:
            await uow.contacts.delete(doomed.email_id)
            await uow.commit()
        assert await _load(uow_factory, doomed.email_id) is None
        assert await _load(uow_factory, kept.email_id) == kept
        # its unique identifiers are free again
        await _store(uow_factory, contact_from_body(sample("maximal")))

    async def test_find_by_primary_email_ignores_case(self, uow_factory: UowFactory) -> None:
        contact = make_contact(primary_email="Mixed.Case@Example.com")
        await _store(uow_factory, contact, make_contact())
        async with uow_factory() as uow:
            found = await uow.contacts.find_by_primary_email("mixed.case@EXAMPLE.com")
        assert found == [contact]

    async def test_get_many_returns_the_existing_ones(self, uow_factory: UowFactory) -> None:
        first, second = make_contact(), make_contact()
        await _store(uow_factory, first, second)
        async with uow_factory() as uow:
            found = await uow.contacts.get_many([second.email_id, uuid.uuid4(), first.email_id])
        assert sorted(found, key=lambda c: c.email_id) == sorted(
            [first, second], key=lambda c: c.email_id
        )

    @pytest.mark.parametrize(
        ("criteria"),
        [
            LookupCriteria(email_id=uuid.UUID("67e52c77-950f-4f28-accb-bb3ea1a2c51a")),
            LookupCriteria(primary_email="MOZILLA-fan@example.com"),
            LookupCriteria(basket_token="d9ba6182-f5dd-4728-a477-2cc11bf62b69"),
            LookupCriteria(sfdc_id="001A000001aMozFan"),
            LookupCriteria(mofo_contact_id="5e499cc0-eeb5-4f0e-aae6-a101721874b8"),
            LookupCriteria(mofo_email_id="195207d2-63f2-4c9f-b149-80e9c408477a"),
            LookupCriteria(amo_user_id="123"),
            LookupCriteria(fxa_id="611b6788-2bba-42a6-98c9-9ce6eb9cbd34"),
            LookupCriteria(fxa_primary_email="FXA-firefox-fan@example.com"),
            LookupCriteria(fxa_id="611b6788-2bba-42a6-98c9-9ce6eb9cbd34", amo_user_id="123"),
            LookupCriteria(
                fxa_id="611b6788-2bba-42a6-98c9-9ce6eb9cbd34",
                fxa_primary_email="fxa-firefox-fan@example.com",
            ),
        ],
    )
    async def test_lookup_finds_a_contact_by_each_identifier(
        self, uow_factory: UowFactory, criteria: LookupCriteria
    ) -> None:
        maximal = contact_from_body(sample("maximal"))
        await _store(uow_factory, maximal, contact_from_body(sample("minimal")))
        async with uow_factory() as uow:
            assert await uow.contacts.lookup(criteria) == [maximal]

    async def test_lookup_combines_identifiers_with_and(self, uow_factory: UowFactory) -> None:
        await _store(
            uow_factory, contact_from_body(sample("maximal")), contact_from_body(sample("minimal"))
        )
        async with uow_factory() as uow:
            mismatch = LookupCriteria(primary_email="ctms-user@example.com", amo_user_id="123")
            assert await uow.contacts.lookup(mismatch) == []
            empty_extra = LookupCriteria(primary_email="mozilla-fan@example.com", amo_user_id="")
            assert await uow.contacts.lookup(empty_extra) == []
            assert await uow.contacts.lookup(LookupCriteria(fxa_id="nobody")) == []

    async def test_lookup_returns_every_contact_sharing_a_non_unique_id(
        self, uow_factory: UowFactory
    ) -> None:
        first = make_contact(sfdc_id="shared", amo=Amo(user_id="7"))
        second = make_contact(sfdc_id="shared", amo=Amo(user_id="7"))
        await _store(uow_factory, first, second, make_contact(sfdc_id="other"))
        async with uow_factory() as uow:
            by_sfdc = await uow.contacts.lookup(LookupCriteria(sfdc_id="shared"))
            by_amo = await uow.contacts.lookup(LookupCriteria(amo_user_id="7"))
        expected = sorted([first.email_id, second.email_id])
        assert [c.email_id for c in by_sfdc] == expected
        assert [c.email_id for c in by_amo] == expected

    async def test_names_sort_in_code_point_order(self, uow_factory: UowFactory) -> None:
        names = ["zeta", "Zeta", "alpha", "état", "_x", "a-b", "a_b"]
        contact = make_contact(newsletters=tuple(make_newsletter(n) for n in names))
        await _store(uow_factory, contact)
        loaded = await _load(uow_factory, contact.email_id)
        assert loaded is not None
        assert [n.name for n in loaded.newsletters] == sorted(names)

    async def test_updates_page_follows_time_then_id_within_bounds(
        self, uow_factory: UowFactory
    ) -> None:
        base = datetime(2021, 1, 1, tzinfo=UTC)
        contacts = [
            make_contact(update_timestamp=base + timedelta(minutes=minute))
            for minute in (0, 5, 5, 10, 20)
        ]
        await _store(uow_factory, *contacts)
        async with uow_factory() as uow:
            page = await uow.contacts.updates_page(
                start=base + timedelta(minutes=5),
                end=base + timedelta(minutes=20),
                after=None,
                limit=10,
                mofo_relevant=None,
            )
        expected = sorted(contacts[1:4], key=lambda c: (c.email.update_timestamp, c.email_id))
        assert page == expected

    async def test_updates_paging_returns_each_contact_once_when_timestamps_tie(
        self, uow_factory: UowFactory
    ) -> None:
        moment = datetime(2021, 6, 1, tzinfo=UTC)
        contacts = [make_contact(update_timestamp=moment) for _ in range(7)]
        await _store(uow_factory, *contacts)
        seen: list[uuid.UUID] = []
        after: Cursor | None = None
        for _ in range(10):  # bounded: a looping pager would fail the assertion below
            async with uow_factory() as uow:
                page = await uow.contacts.updates_page(
                    start=moment,
                    end=moment + timedelta(seconds=1),
                    after=after,
                    limit=3,
                    mofo_relevant=None,
                )
            if not page:
                break
            seen += [contact.email_id for contact in page]
            last = page[-1].email
            assert last.update_timestamp is not None
            after = Cursor(last.email_id, last.update_timestamp)
        assert seen == sorted(contact.email_id for contact in contacts)

    async def test_updates_filter_on_mofo_relevance(self, uow_factory: UowFactory) -> None:
        moment = datetime(2021, 6, 1, tzinfo=UTC)
        without = make_contact(update_timestamp=moment)
        relevant = make_contact(update_timestamp=moment, mofo=Mofo(mofo_relevant=True))
        irrelevant = make_contact(
            update_timestamp=moment, mofo=Mofo(mofo_relevant=False, mofo_contact_id="x")
        )
        await _store(uow_factory, without, relevant, irrelevant)

        async def page(mofo_relevant: bool | None) -> set[uuid.UUID]:
            async with uow_factory() as uow:
                found = await uow.contacts.updates_page(
                    start=moment,
                    end=moment + timedelta(days=1),
                    after=None,
                    limit=10,
                    mofo_relevant=mofo_relevant,
                )
            return {contact.email_id for contact in found}

        assert await page(None) == {without.email_id, relevant.email_id, irrelevant.email_id}
        assert await page(True) == {relevant.email_id}
        assert await page(False) == {without.email_id, irrelevant.email_id}

    async def test_amo_last_login_is_a_date(self, uow_factory: UowFactory) -> None:
        contact = make_contact(
            amo=Amo(
                last_login=date(2020, 1, 27),
                create_timestamp=DEFAULT_TIME,
                update_timestamp=DEFAULT_TIME,
            )
        )
        await _store(uow_factory, contact)
        loaded = await _load(uow_factory, contact.email_id)
        assert loaded is not None and loaded.amo is not None
        assert loaded.amo.last_login == date(2020, 1, 27)

    async def test_waitlist_fields_keep_any_json_value(self, uow_factory: UowFactory) -> None:
        fields = {"geo": 12, "nested": {"a": [1, "b", None, True]}, "empty": ""}
        contact = make_contact(waitlists=(make_waitlist("future", fields=fields),))
        await _store(uow_factory, contact)
        loaded = await _load(uow_factory, contact.email_id)
        assert loaded is not None
        assert loaded.waitlists[0].fields == fields


def _client(client_id: str = "id_basket", **overrides: object) -> ApiClient:
    values: dict[str, object] = {
        "client_id": client_id,
        "email": "basket@example.com",
        "hashed_secret": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA",
        "create_timestamp": DEFAULT_TIME,
        "update_timestamp": DEFAULT_TIME,
    }
    values.update(overrides)
    return ApiClient(**values)  # type: ignore[arg-type]


class ApiClientRepositoryContract:
    async def test_added_client_reads_back(self, uow_factory: UowFactory) -> None:
        client = _client()
        async with uow_factory() as uow:
            await uow.api_clients.add(client)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.api_clients.get("id_basket") == client
            assert await uow.api_clients.get("id_nobody") is None

    async def test_taken_client_id_is_a_unique_violation(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client())
            await uow.commit()
        with pytest.raises(UniqueConstraintViolation):  # noqa: PT012 - the commit is part of it
            async with uow_factory() as uow:
                await uow.api_clients.add(_client(email="other@example.com"))
                await uow.commit()

    async def test_list_is_sorted_by_id_and_save_updates(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client("id_b"))
            await uow.api_clients.add(_client("id_a"))
            await uow.commit()
        changed = _client("id_b", enabled=False, credentials_changed_at=DEFAULT_TIME)
        async with uow_factory() as uow:
            await uow.api_clients.save(changed)
            await uow.commit()
        async with uow_factory() as uow:
            clients = await uow.api_clients.list()
        assert [c.client_id for c in clients] == ["id_a", "id_b"]
        assert clients[1] == changed

    async def test_record_access_sets_last_access(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client())
            await uow.commit()
        moment = datetime(2024, 5, 1, 10, 30, 15, 123456, tzinfo=UTC)
        async with uow_factory() as uow:
            await uow.api_clients.record_access("id_basket", moment)
            await uow.commit()
        async with uow_factory() as uow:
            client = await uow.api_clients.get("id_basket")
        assert client is not None and client.last_access == moment

    async def test_deleted_client_is_gone_with_its_role_grants(
        self, uow_factory: UowFactory
    ) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client("id_leaving"))
            await uow.api_clients.add(_client("id_staying"))
            await uow.roles.add_role("t-shared", None)
            await uow.roles.grant_role("id_leaving", "t-shared")
            await uow.roles.grant_role("id_staying", "t-shared")
            await uow.commit()
        async with uow_factory() as uow:
            await uow.api_clients.delete("id_leaving")
            await uow.api_clients.delete("id_never_existed")
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.api_clients.get("id_leaving") is None
            staying = await uow.api_clients.get("id_staying")
            role = await uow.roles.get_role("t-shared")
        assert staying is not None and staying.roles == ("t-shared",)
        assert role is not None and role.clients == ("id_staying",)

    async def test_a_client_deleted_in_a_rolled_back_transaction_stays(
        self, uow_factory: UowFactory
    ) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client())
            await uow.commit()
        async with uow_factory() as uow:
            await uow.api_clients.delete("id_basket")  # no commit
        async with uow_factory() as uow:
            assert await uow.api_clients.get("id_basket") is not None


class RoleRepositoryContract:
    """Seed-agnostic: the in-memory store starts with the standard roles, an emptied database without."""

    async def test_roles_and_permissions_read_back_with_their_grants(
        self, uow_factory: UowFactory
    ) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client("id_reader"))
            await uow.roles.add_role("t-viewer", "Looks only")
            await uow.roles.add_role("t-editor", None)
            await uow.roles.add_permission("t:read", "Read")
            await uow.roles.add_permission("t:write", None)
            await uow.roles.grant_permission("t-viewer", "t:read")
            await uow.roles.grant_permission("t-editor", "t:read")
            await uow.roles.grant_permission("t-editor", "t:write")
            await uow.roles.grant_role("id_reader", "t-viewer")
            await uow.commit()
        async with uow_factory() as uow:
            viewer = await uow.roles.get_role("t-viewer")
            read = await uow.roles.get_permission("t:read")
            listed = [r.name for r in await uow.roles.list_roles() if r.name.startswith("t-")]
            perms = [p.name for p in await uow.roles.list_permissions() if p.name.startswith("t:")]
            client = await uow.api_clients.get("id_reader")
            [listed_client] = [
                c for c in await uow.api_clients.list() if c.client_id == "id_reader"
            ]
            assert await uow.roles.get_role("t-nobody") is None
            assert await uow.roles.get_permission("t:nothing") is None
        assert viewer == Role(
            name="t-viewer",
            description="Looks only",
            permissions=("t:read",),
            clients=("id_reader",),
        )
        assert read == Permission(name="t:read", description="Read", roles=("t-editor", "t-viewer"))
        assert listed == ["t-editor", "t-viewer"]
        assert perms == ["t:read", "t:write"]
        assert client is not None
        assert client.roles == ("t-viewer",)
        assert client.permissions == frozenset({"t:read"})
        assert listed_client == client

    async def test_a_client_gets_the_union_of_its_roles_permissions(
        self, uow_factory: UowFactory
    ) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client("id_both"))
            for role in ("t-a", "t-b"):
                await uow.roles.add_role(role, None)
            for permission in ("t:1", "t:2", "t:3"):
                await uow.roles.add_permission(permission, None)
            await uow.roles.grant_permission("t-a", "t:1")
            await uow.roles.grant_permission("t-a", "t:2")
            await uow.roles.grant_permission("t-b", "t:2")
            await uow.roles.grant_permission("t-b", "t:3")
            await uow.roles.grant_role("id_both", "t-b")
            await uow.roles.grant_role("id_both", "t-a")
            await uow.commit()
        async with uow_factory() as uow:
            client = await uow.api_clients.get("id_both")
        assert client is not None
        assert client.roles == ("t-a", "t-b")
        assert client.permissions == frozenset({"t:1", "t:2", "t:3"})

    async def test_granting_twice_is_a_no_op(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client("id_twice"))
            await uow.roles.add_role("t-twice", None)
            await uow.roles.add_permission("t:twice", None)
            for _ in range(2):
                await uow.roles.grant_permission("t-twice", "t:twice")
                await uow.roles.grant_role("id_twice", "t-twice")
            await uow.commit()
        async with uow_factory() as uow:
            role = await uow.roles.get_role("t-twice")
        assert role is not None
        assert (role.permissions, role.clients) == (("t:twice",), ("id_twice",))

    async def test_saving_a_client_keeps_its_roles(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client("id_kept"))
            await uow.roles.add_role("t-kept", None)
            await uow.roles.grant_role("id_kept", "t-kept")
            await uow.commit()
        async with uow_factory() as uow:
            client = await uow.api_clients.get("id_kept")
            assert client is not None
            await uow.api_clients.save(replace(client, enabled=False))
            await uow.commit()
        async with uow_factory() as uow:
            saved = await uow.api_clients.get("id_kept")
        assert saved is not None
        assert (saved.enabled, saved.roles) == (False, ("t-kept",))

    async def test_duplicate_names_are_unique_violations(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.roles.add_role("t-dup", None)
            await uow.roles.add_permission("t:dup", None)
            await uow.commit()
        async with uow_factory() as uow:
            with pytest.raises(UniqueConstraintViolation):
                await uow.roles.add_role("t-dup", "again")
        async with uow_factory() as uow:
            with pytest.raises(UniqueConstraintViolation):
                await uow.roles.add_permission("t:dup", "again")

    async def test_revoking_and_deleting_remove_grants(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.api_clients.add(_client("id_gone"))
            await uow.roles.add_role("t-r", None)
            await uow.roles.add_role("t-s", None)
            await uow.roles.add_permission("t:p", None)
            await uow.roles.add_permission("t:q", None)
            await uow.roles.grant_permission("t-r", "t:p")
            await uow.roles.grant_permission("t-r", "t:q")
            await uow.roles.grant_permission("t-s", "t:p")
            await uow.roles.grant_role("id_gone", "t-r")
            await uow.roles.grant_role("id_gone", "t-s")
            await uow.commit()
        async with uow_factory() as uow:
            await uow.roles.revoke_permission("t-r", "t:q")
            await uow.roles.revoke_role("id_gone", "t-s")
            await uow.roles.delete_permission("t:p")
            await uow.commit()
        async with uow_factory() as uow:
            role = await uow.roles.get_role("t-r")
            client = await uow.api_clients.get("id_gone")
        assert role is not None and role.permissions == ()
        assert client is not None
        assert (client.roles, client.permissions) == (("t-r",), frozenset())
        async with uow_factory() as uow:
            await uow.roles.delete_role("t-r")
            await uow.commit()
        async with uow_factory() as uow:
            client = await uow.api_clients.get("id_gone")
            assert await uow.roles.get_role("t-r") is None
        assert client is not None and client.roles == ()

    async def test_uncommitted_grants_leave_no_trace(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.roles.add_role("t-temp", None)
        async with uow_factory() as uow:
            assert await uow.roles.get_role("t-temp") is None


class ErasureAuditRepositoryContract:
    async def test_records_read_back_oldest_first_with_ids(self, uow_factory: UowFactory) -> None:
        first = ErasureRecord(
            erased_at=DEFAULT_TIME,
            client_id="id_basket",
            email_id=uuid.uuid4(),
            email_hash="a" * 64,
        )
        second = ErasureRecord(
            erased_at=DEFAULT_TIME + timedelta(hours=1),
            client_id=None,
            email_id=uuid.uuid4(),
            email_hash="b" * 64,
        )
        async with uow_factory() as uow:
            await uow.erasures.add(second)
            await uow.erasures.add(first)
            await uow.commit()
        async with uow_factory() as uow:
            records = await uow.erasures.list()
            later = await uow.erasures.list(since=DEFAULT_TIME + timedelta(minutes=1))
            by_hash = await uow.erasures.list(email_hash="a" * 64)
        assert [replace(r, id=None) for r in records] == [first, second]
        assert all(isinstance(r.id, int) for r in records)
        assert len({r.id for r in records}) == 2
        assert [r.email_id for r in later] == [second.email_id]
        assert [r.email_id for r in by_hash] == [first.email_id]

    async def test_dropped_addresses_are_marked_once(self, uow_factory: UowFactory) -> None:
        dropped, kept = uuid.uuid4(), uuid.uuid4()
        async with uow_factory() as uow:
            for email_id in (dropped, kept):
                await uow.erasures.add(
                    ErasureRecord(
                        erased_at=DEFAULT_TIME, client_id=None, email_id=email_id, email_hash="d"
                    )
                )
            await uow.commit()
        for at in (DEFAULT_TIME + timedelta(days=3), DEFAULT_TIME + timedelta(days=4)):
            async with uow_factory() as uow:
                await uow.erasures.mark_address_dropped([dropped], at)
                await uow.commit()
        async with uow_factory() as uow:
            marks = {r.email_id: r.address_dropped_at for r in await uow.erasures.list()}
        assert marks == {dropped: DEFAULT_TIME + timedelta(days=3), kept: None}

    async def test_uncommitted_records_leave_no_trace(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.erasures.add(
                ErasureRecord(
                    erased_at=DEFAULT_TIME, client_id=None, email_id=uuid.uuid4(), email_hash="c"
                )
            )
        async with uow_factory() as uow:
            assert await uow.erasures.list() == []


# --- Stripe (docs/contract.md §1.5) ------------------------------------------------------------------------

_STRIPE_WHEN = datetime(2021, 6, 1, tzinfo=UTC)
_STRIPE_STAMPS = {"create_timestamp": _STRIPE_WHEN, "update_timestamp": _STRIPE_WHEN}


def _stripe_customer(stripe_id: str = "cus_1", fxa_id: str = "fxa-1") -> StripeCustomer:
    return StripeCustomer(
        stripe_id=stripe_id, fxa_id=fxa_id, stripe_created=_STRIPE_WHEN, **_STRIPE_STAMPS
    )


def _stripe_price(stripe_id: str = "price_1", **overrides: object) -> StripePrice:
    values: dict[str, object] = {
        "stripe_id": stripe_id,
        "stripe_product_id": "prod_1",
        "stripe_created": _STRIPE_WHEN,
        "currency": "usd",
        "recurring_interval": "month",
        "recurring_interval_count": 1,
        "unit_amount": 999,
        **_STRIPE_STAMPS,
        **overrides,
    }
    return StripePrice(**values)  # type: ignore[arg-type]


def _stripe_subscription(
    stripe_id: str = "sub_1", customer_id: str = "cus_1"
) -> StripeSubscription:
    return StripeSubscription(
        stripe_id=stripe_id,
        stripe_customer_id=customer_id,
        stripe_created=_STRIPE_WHEN,
        cancel_at_period_end=False,
        current_period_end=_STRIPE_WHEN + timedelta(days=30),
        current_period_start=_STRIPE_WHEN,
        start_date=_STRIPE_WHEN,
        status="active",
        **_STRIPE_STAMPS,
    )


def _stripe_item(stripe_id: str = "si_1", subscription_id: str = "sub_1") -> StripeSubscriptionItem:
    return StripeSubscriptionItem(
        stripe_id=stripe_id,
        stripe_subscription_id=subscription_id,
        stripe_price_id="price_1",
        stripe_created=_STRIPE_WHEN,
        **_STRIPE_STAMPS,
    )


def _stripe_invoice(stripe_id: str = "in_1", customer_id: str = "cus_1") -> StripeInvoice:
    return StripeInvoice(
        stripe_id=stripe_id,
        stripe_customer_id=customer_id,
        stripe_created=_STRIPE_WHEN,
        currency="usd",
        total=100,
        status="paid",
        **_STRIPE_STAMPS,
    )


def _stripe_line(stripe_id: str = "il_1", invoice_id: str = "in_1") -> StripeInvoiceLineItem:
    return StripeInvoiceLineItem(
        stripe_id=stripe_id,
        stripe_invoice_id=invoice_id,
        stripe_type="subscription",
        stripe_price_id="price_1",
        stripe_subscription_id="sub_1",
        amount=100,
        currency="usd",
        **_STRIPE_STAMPS,
    )


class StripeRepositoryContract:
    async def test_every_row_reads_back_identically(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            repo = uow.stripe
            await repo.save_customer(_stripe_customer())
            await repo.save_price(_stripe_price())
            await repo.save_subscription(_stripe_subscription())
            await repo.save_subscription_item(_stripe_item())
            await repo.save_invoice(_stripe_invoice())
            await repo.save_invoice_line_item(_stripe_line())
            await uow.commit()
        async with uow_factory() as uow:
            repo = uow.stripe
            assert await repo.get_customer("cus_1", for_update=True) == _stripe_customer()
            assert await repo.find_customer_by_fxa_id("fxa-1") == _stripe_customer()
            assert await repo.get_price("price_1") == _stripe_price()
            assert await repo.get_subscription("sub_1") == _stripe_subscription()
            assert await repo.get_subscription_item("si_1", for_update=True) == _stripe_item()
            assert await repo.get_invoice("in_1", for_update=True) == _stripe_invoice()
            assert await repo.get_invoice_line_item("il_1") == _stripe_line()
            assert await repo.get_customer("cus_none") is None

    async def test_saving_again_replaces_the_row(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.stripe.save_price(_stripe_price())
            await uow.stripe.save_customer(_stripe_customer())
            await uow.commit()
        changed_price = _stripe_price(active=False, unit_amount=None)
        changed_customer = replace(_stripe_customer(), fxa_id="fxa-2", deleted=True)
        async with uow_factory() as uow:
            await uow.stripe.save_price(changed_price)
            await uow.stripe.save_customer(changed_customer)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.stripe.get_price("price_1") == changed_price
            assert await uow.stripe.get_customer("cus_1") == changed_customer
            assert await uow.stripe.find_customer_by_fxa_id("fxa-1") is None

    async def test_stripe_work_commits_and_rolls_back_with_contacts(
        self, uow_factory: UowFactory
    ) -> None:
        contact = make_contact()
        async with uow_factory() as uow:
            await uow.contacts.add(contact)
            await uow.stripe.save_customer(_stripe_customer())
        async with uow_factory() as uow:
            assert await uow.stripe.get_customer("cus_1") is None
            assert await uow.contacts.get(contact.email_id) is None
            await uow.contacts.add(contact)
            await uow.stripe.save_customer(_stripe_customer())
            await uow.rollback()
            assert await uow.stripe.get_customer("cus_1") is None
            await uow.stripe.save_customer(_stripe_customer())
            await uow.contacts.add(contact)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.stripe.get_customer("cus_1") == _stripe_customer()
            assert await uow.contacts.get(contact.email_id) == contact

    async def test_fxa_id_is_unique(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.stripe.save_customer(_stripe_customer())
            await uow.commit()
        async with uow_factory() as uow:
            with pytest.raises(UniqueConstraintViolation) as raised:
                await uow.stripe.save_customer(_stripe_customer("cus_2"))
            assert raised.value.fields == ("fxa_id",)

    async def test_deleting_parents_deletes_their_children(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            repo = uow.stripe
            await repo.save_customer(_stripe_customer())
            await repo.save_price(_stripe_price())
            await repo.save_subscription(_stripe_subscription())
            await repo.save_subscription(_stripe_subscription("sub_0"))
            await repo.save_subscription_item(_stripe_item())
            await repo.save_subscription_item(_stripe_item("si_0", "sub_0"))
            await repo.save_invoice(_stripe_invoice())
            await repo.save_invoice_line_item(_stripe_line())
            await repo.save_invoice_line_item(_stripe_line("il_0"))
            await uow.commit()
        async with uow_factory() as uow:
            repo = uow.stripe
            assert await repo.subscription_ids_of_customer("cus_1", for_update=True) == [
                "sub_0",
                "sub_1",
            ]
            assert await repo.invoice_ids_of_customer("cus_1", for_update=True) == ["in_1"]
            assert await repo.subscription_item_ids("sub_1", for_update=True) == ["si_1"]
            assert await repo.invoice_line_item_ids("in_1", for_update=True) == ["il_0", "il_1"]
            await repo.delete_invoice_line_items(["il_0"])
            await repo.delete_subscription_items(["si_0"])
            await repo.delete_subscriptions(["sub_1"])
            await repo.delete_invoices(["in_1"])
            await repo.delete_customer("cus_1")
            await uow.commit()
        async with uow_factory() as uow:
            repo = uow.stripe
            assert await repo.get_customer("cus_1") is None
            assert await repo.subscription_ids_of_customer("cus_1") == ["sub_0"]
            assert await repo.subscription_item_ids("sub_1") == []
            assert await repo.subscription_item_ids("sub_0") == []
            assert await repo.invoice_ids_of_customer("cus_1") == []
            assert await repo.invoice_line_item_ids("in_1") == []
            assert await repo.get_price("price_1") == _stripe_price()

    async def test_accounts_hold_only_each_customers_own_rows(
        self, uow_factory: UowFactory
    ) -> None:
        async with uow_factory() as uow:
            repo = uow.stripe
            await repo.save_customer(_stripe_customer())
            await repo.save_customer(_stripe_customer("cus_2", "fxa-2"))
            await repo.save_customer(_stripe_customer("cus_3", "fxa-3"))
            await repo.save_price(_stripe_price())
            await repo.save_price(_stripe_price("price_unused"))
            await repo.save_subscription(_stripe_subscription())
            await repo.save_subscription(_stripe_subscription("sub_2", "cus_2"))
            await repo.save_subscription_item(_stripe_item())
            await repo.save_subscription_item(_stripe_item("si_2", "sub_2"))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.stripe.accounts_for_fxa_ids([]) == {}
            accounts = await uow.stripe.accounts_for_fxa_ids(["fxa-1", "fxa-3", "fxa-none"])
        assert sorted(accounts) == ["fxa-1", "fxa-3"]
        account = accounts["fxa-1"]
        assert account.customer == _stripe_customer()
        assert account.subscriptions == (_stripe_subscription(),)
        assert account.items == (_stripe_item(),)
        assert account.prices == (_stripe_price(),)
        empty = accounts["fxa-3"]
        assert (empty.subscriptions, empty.items, empty.prices) == ((), (), ())


# --- Acoustic sync queue and configuration (issue #5) ----------------------------------------------------

QUEUE_NOW = datetime(2024, 1, 1, tzinfo=UTC)
LEASE = QUEUE_NOW + timedelta(minutes=5)


async def _enqueue(
    uow_factory: UowFactory, *email_ids: uuid.UUID, at: datetime = QUEUE_NOW
) -> None:
    async with uow_factory() as uow:
        for email_id in email_ids:
            await uow.sync_queue.enqueue(email_id, at)
        await uow.commit()


async def _claim(
    uow_factory: UowFactory,
    limit: int = 10,
    now: datetime = QUEUE_NOW,
    destination: str = "acoustic",
    route_to: tuple[str, ...] = ("acoustic",),
) -> list[PendingSync]:
    """Route the inlet's rows to `route_to` (as each worker pass does first), then claim."""
    async with uow_factory() as uow:
        await uow.sync_queue.route(route_to, limit=limit, now=now)
        claimed = await uow.sync_queue.claim(
            destination, limit=limit, now=now, lease_until=now + timedelta(minutes=5)
        )
        await uow.commit()
    return claimed


async def _fail(
    uow_factory: UowFactory,
    item: PendingSync,
    error: str,
    retry_at: datetime,
    *,
    give_up: bool = False,
    destination: str = "acoustic",
) -> None:
    async with uow_factory() as uow:
        await uow.sync_queue.fail(
            destination,
            item.email_id,
            item.version,
            error,
            retry_at,
            now=QUEUE_NOW,
            give_up=give_up,
        )
        await uow.commit()


class SyncQueueContract:
    async def test_enqueueing_twice_leaves_one_row(self, uow_factory: UowFactory) -> None:
        email_id = uuid.uuid4()
        await _enqueue(uow_factory, email_id)
        await _enqueue(uow_factory, email_id, at=QUEUE_NOW + timedelta(seconds=1))
        claimed = await _claim(uow_factory)
        assert [item.email_id for item in claimed] == [email_id]
        assert claimed[0].operation == "sync"

    async def test_an_uncommitted_enqueue_leaves_no_row(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.sync_queue.enqueue(uuid.uuid4(), QUEUE_NOW)
        assert await _claim(uow_factory) == []

    async def test_claimed_rows_are_leased_until_the_lease_ends(
        self, uow_factory: UowFactory
    ) -> None:
        email_id = uuid.uuid4()
        await _enqueue(uow_factory, email_id)
        assert len(await _claim(uow_factory)) == 1
        assert await _claim(uow_factory) == []  # leased by the first claim
        later = QUEUE_NOW + timedelta(minutes=6)
        assert [i.email_id for i in await _claim(uow_factory, now=later)] == [email_id]

    async def test_claim_honours_the_batch_limit_and_age_order(
        self, uow_factory: UowFactory
    ) -> None:
        ids = [uuid.uuid4() for _ in range(3)]
        for offset, email_id in enumerate(ids):
            await _enqueue(uow_factory, email_id, at=QUEUE_NOW + timedelta(seconds=offset))
        later = QUEUE_NOW + timedelta(minutes=1)
        assert [i.email_id for i in await _claim(uow_factory, limit=2, now=later)] == ids[:2]

    async def test_complete_deletes_an_unchanged_row(self, uow_factory: UowFactory) -> None:
        email_id = uuid.uuid4()
        await _enqueue(uow_factory, email_id)
        (item,) = await _claim(uow_factory)
        async with uow_factory() as uow:
            assert await uow.sync_queue.complete("acoustic", {email_id: item.version}) == {email_id}
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.sync_queue.counts("acoustic") == QueueCounts(
                backlog=0, retry_backlog=0
            )

    async def test_an_edit_during_the_upload_keeps_the_row(self, uow_factory: UowFactory) -> None:
        email_id = uuid.uuid4()
        await _enqueue(uow_factory, email_id)
        (item,) = await _claim(uow_factory)
        await _enqueue(uow_factory, email_id, at=QUEUE_NOW + timedelta(seconds=1))
        async with uow_factory() as uow:
            # The edit reaches the destination's row when the inlet is next routed.
            await uow.sync_queue.route(("acoustic",), limit=10, now=QUEUE_NOW)
            assert await uow.sync_queue.complete("acoustic", {email_id: item.version}) == set()
            await uow.commit()
        (again,) = await _claim(uow_factory, now=QUEUE_NOW + timedelta(seconds=2))
        assert again.version > item.version

    async def test_a_batch_completes_the_unchanged_rows_and_releases_the_edited_ones(
        self, uow_factory: UowFactory
    ) -> None:
        unchanged, edited = uuid.uuid4(), uuid.uuid4()
        await _enqueue(uow_factory, unchanged, edited)
        sent = {item.email_id: item.version for item in await _claim(uow_factory)}
        await _enqueue(uow_factory, edited, at=QUEUE_NOW + timedelta(seconds=1))
        async with uow_factory() as uow:
            await uow.sync_queue.route(("acoustic",), limit=10, now=QUEUE_NOW)
            assert await uow.sync_queue.complete("acoustic", sent) == {unchanged}
            await uow.commit()
        # Released: claimable at once, not only when the lease ends.
        (again,) = await _claim(uow_factory, now=QUEUE_NOW + timedelta(seconds=2))
        assert again.email_id == edited

    async def test_fail_counts_a_retry_and_backs_off(self, uow_factory: UowFactory) -> None:
        email_id = uuid.uuid4()
        await _enqueue(uow_factory, email_id)
        (item,) = await _claim(uow_factory)
        retry_at = QUEUE_NOW + timedelta(seconds=30)
        await _fail(uow_factory, item, "AcousticFault('x')", retry_at)
        assert await _claim(uow_factory, now=QUEUE_NOW + timedelta(seconds=10)) == []
        (again,) = await _claim(uow_factory, now=retry_at)
        assert (again.retry, again.last_error) == (1, "AcousticFault('x')")
        assert again.failing_since == QUEUE_NOW
        async with uow_factory() as uow:
            assert await uow.sync_queue.counts("acoustic") == QueueCounts(
                backlog=1, retry_backlog=1
            )

    async def test_rows_past_the_retry_limit_are_failed_until_resynced(
        self, uow_factory: UowFactory
    ) -> None:
        email_id = uuid.uuid4()
        await _enqueue(uow_factory, email_id)
        now = QUEUE_NOW
        for attempt in range(3):
            (item,) = await _claim(uow_factory, now=now)
            await _fail(uow_factory, item, "boom", now, give_up=attempt == 2)
        assert await _claim(uow_factory, now=now) == []
        async with uow_factory() as uow:
            assert [i.email_id for i in await uow.sync_queue.failed("acoustic")] == [email_id]
            assert await uow.sync_queue.counts("acoustic") == QueueCounts(
                backlog=0, retry_backlog=1
            )
            assert await uow.sync_queue.reset_failed("acoustic", now) == 1
            await uow.commit()
        (item,) = await _claim(uow_factory, now=now)
        assert item.retry == 0

    async def test_contacts_scheduled_for_one_destination_reach_it_alone_and_revive_failures(
        self, uow_factory: UowFactory
    ) -> None:
        new, failing, erased = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await _enqueue(uow_factory, failing)
        (item,) = await _claim(uow_factory, destination="braze", route_to=("acoustic", "braze"))
        await _fail(
            uow_factory,
            item,
            "boom",
            QUEUE_NOW + timedelta(hours=1),
            give_up=True,
            destination="braze",
        )
        async with uow_factory() as uow:
            await uow.sync_queue.enqueue_erasure(
                AcousticDeletion(email_id=erased, primary_email="gone@example.com"), QUEUE_NOW
            )
            await uow.sync_queue.route(("acoustic", "braze"), limit=10, now=QUEUE_NOW)
            scheduled = await uow.sync_queue.enqueue_for(
                "braze", [new, failing, erased, new], QUEUE_NOW
            )
            await uow.commit()
        assert scheduled == 2  # the erasure stays an erasure
        claimed = await _claim(uow_factory, destination="braze", route_to=())
        by_id = {item.email_id: item for item in claimed}
        assert set(by_id) == {new, failing, erased}
        assert (by_id[failing].retry, by_id[failing].operation) == (0, "sync")
        assert by_id[failing].version > item.version
        assert by_id[erased].operation == "erase"
        acoustic = await _claim(uow_factory, destination="acoustic", route_to=())
        assert new not in {item.email_id for item in acoustic}

    async def test_a_new_edit_revives_a_failed_row(self, uow_factory: UowFactory) -> None:
        email_id = uuid.uuid4()
        await _enqueue(uow_factory, email_id)
        for attempt in range(3):
            (item,) = await _claim(uow_factory)
            await _fail(uow_factory, item, "boom", QUEUE_NOW, give_up=attempt == 2)
        await _enqueue(uow_factory, email_id)
        (item,) = await _claim(uow_factory)
        assert item.retry == 0

    async def test_an_erasure_replaces_a_pending_sync(self, uow_factory: UowFactory) -> None:
        email_id = uuid.uuid4()
        await _enqueue(uow_factory, email_id)
        deletion = AcousticDeletion(
            email_id=email_id, primary_email="gone@example.com", newsletter_names=("a", "b")
        )
        async with uow_factory() as uow:
            await uow.sync_queue.enqueue_erasure(deletion, QUEUE_NOW)
            await uow.commit()
        (item,) = await _claim(uow_factory)
        assert (item.operation, item.deletion) == ("erase", deletion)

    async def test_erasures_queued_until_a_time_are_dropped_with_their_address(
        self, uow_factory: UowFactory
    ) -> None:
        """Only erasures, only those queued at or before the time; syncs and later erasures stay."""
        old, recent, synced = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        async with uow_factory() as uow:
            for email_id, at in ((old, QUEUE_NOW), (recent, QUEUE_NOW + timedelta(seconds=2))):
                deletion = AcousticDeletion(email_id=email_id, primary_email=f"{email_id}@e.com")
                await uow.sync_queue.enqueue_erasure(deletion, at)
            await uow.sync_queue.enqueue(synced, QUEUE_NOW)
            await uow.commit()
        async with uow_factory() as uow:
            dropped = await uow.sync_queue.drop_erasures(QUEUE_NOW + timedelta(seconds=1))
            await uow.commit()
        assert dropped == [old]
        claimed = await _claim(uow_factory, now=QUEUE_NOW + timedelta(seconds=3))
        assert sorted(item.email_id for item in claimed) == sorted([recent, synced])

    async def test_erasures_are_dropped_from_every_destination_too(
        self, uow_factory: UowFactory
    ) -> None:
        email_id = uuid.uuid4()
        async with uow_factory() as uow:
            deletion = AcousticDeletion(email_id=email_id, primary_email=f"{email_id}@e.com")
            await uow.sync_queue.enqueue_erasure(deletion, QUEUE_NOW)
            await uow.sync_queue.route(("acoustic", "braze"), limit=10, now=QUEUE_NOW)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.sync_queue.drop_erasures(QUEUE_NOW) == [email_id]
            await uow.commit()
        for name in ("acoustic", "braze"):
            assert await _claim(uow_factory, destination=name, route_to=()) == []

    async def test_routing_gives_every_destination_its_own_row(
        self, uow_factory: UowFactory
    ) -> None:
        """Each destination claims, completes and fails its own copy; an edit made meanwhile reaches
        both (version bumped, failure state reset), and the counts are per destination."""
        email_id = uuid.uuid4()
        both = ("acoustic", "braze")
        await _enqueue(uow_factory, email_id)
        (acoustic,) = await _claim(uow_factory, destination="acoustic", route_to=both)
        (braze,) = await _claim(uow_factory, destination="braze", route_to=both)
        async with uow_factory() as uow:
            assert await uow.sync_queue.complete("acoustic", {email_id: acoustic.version}) == {
                email_id
            }
            await uow.commit()
        await _fail(uow_factory, braze, "down", QUEUE_NOW, destination="braze")
        async with uow_factory() as uow:
            assert await uow.sync_queue.counts("acoustic") == QueueCounts(
                backlog=0, retry_backlog=0
            )
            assert await uow.sync_queue.counts("braze") == QueueCounts(backlog=1, retry_backlog=1)
        await _enqueue(uow_factory, email_id, at=QUEUE_NOW + timedelta(seconds=1))
        later = QUEUE_NOW + timedelta(seconds=2)
        (acoustic,) = await _claim(uow_factory, now=later, destination="acoustic", route_to=both)
        (braze_again,) = await _claim(uow_factory, now=later, destination="braze", route_to=both)
        assert (braze_again.retry, braze_again.last_error) == (0, "")
        assert braze_again.failing_since is None
        assert braze_again.version > braze.version

    async def test_the_counts_include_the_inlet_and_the_oldest_erasure(
        self, uow_factory: UowFactory
    ) -> None:
        routed, waiting = uuid.uuid4(), uuid.uuid4()
        async with uow_factory() as uow:
            await uow.sync_queue.enqueue_erasure(
                AcousticDeletion(email_id=routed, primary_email="a@e.com"), QUEUE_NOW
            )
            await uow.sync_queue.route(("acoustic",), limit=10, now=QUEUE_NOW)
            await uow.sync_queue.enqueue(waiting, QUEUE_NOW + timedelta(seconds=1))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.sync_queue.counts("acoustic") == QueueCounts(
                backlog=2, retry_backlog=0, oldest_erasure_at=QUEUE_NOW
            )


class AcousticConfigContract:
    async def test_the_seeded_configuration_is_r13_2(self, seeded_uow_factory: UowFactory) -> None:
        async with seeded_uow_factory() as uow:
            assert await uow.acoustic_config.load() == default_configuration()

    async def test_fields_and_mappings_are_edited(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.acoustic_config.add_field("main", "fxa_lang")
            await uow.acoustic_config.add_field("main", "fxa_lang")
            await uow.acoustic_config.add_field("waitlist", "geo")
            await uow.acoustic_config.add_newsletter_mapping("a", "sub_a")
            await uow.acoustic_config.add_newsletter_mapping("a", "sub_b")
            await uow.commit()
        async with uow_factory() as uow:
            assert ("main", "fxa_lang") in await uow.acoustic_config.fields()
            assert ("a", "sub_b") in await uow.acoustic_config.newsletter_mappings()
            assert await uow.acoustic_config.remove_field("main", "fxa_lang") is True
            assert await uow.acoustic_config.remove_field("main", "fxa_lang") is False
            assert await uow.acoustic_config.remove_newsletter_mapping("a") == "sub_b"
            assert await uow.acoustic_config.remove_newsletter_mapping("a") is None
            await uow.commit()
        async with uow_factory() as uow:
            assert ("main", "fxa_lang") not in await uow.acoustic_config.fields()


class WaitlistFieldRuleContract:
    async def test_the_seeded_rules_are_v33s(self, seeded_uow_factory: UowFactory) -> None:
        async with seeded_uow_factory() as uow:
            assert await uow.waitlist_rules.list() == sorted(SEEDED_WAITLIST_FIELD_RULES)

    async def test_rules_are_listed_by_waitlist_then_field(self, uow_factory: UowFactory) -> None:
        added = [
            WaitlistFieldRule(waitlist="zeta", field="b", max_length=1),
            WaitlistFieldRule(waitlist="alpha", field="z", max_length=2, required=True),
            WaitlistFieldRule(waitlist="zeta", field="a", max_length=3),
        ]
        async with uow_factory() as uow:
            for rule in added:
                await uow.waitlist_rules.set(rule)
            await uow.commit()
        async with uow_factory() as uow:
            listed = await uow.waitlist_rules.list()
        assert listed == sorted(listed, key=lambda rule: (rule.waitlist, rule.field))
        assert [rule for rule in listed if rule in added] == sorted(added)

    async def test_setting_a_rule_again_replaces_it(self, uow_factory: UowFactory) -> None:
        async with uow_factory() as uow:
            await uow.waitlist_rules.set(
                WaitlistFieldRule(waitlist="monitor", field="tier", max_length=5, required=True)
            )
            await uow.commit()
        async with uow_factory() as uow:
            await uow.waitlist_rules.set(
                WaitlistFieldRule(waitlist="monitor", field="tier", max_length=9)
            )
            await uow.commit()
        async with uow_factory() as uow:
            monitor = [r for r in await uow.waitlist_rules.list() if r.waitlist == "monitor"]
        assert monitor == [WaitlistFieldRule(waitlist="monitor", field="tier", max_length=9)]

    async def test_removing_a_rule_says_whether_there_was_one(
        self, uow_factory: UowFactory
    ) -> None:
        rule = WaitlistFieldRule(waitlist="monitor", field="tier", max_length=5)
        async with uow_factory() as uow:
            await uow.waitlist_rules.set(rule)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.waitlist_rules.remove("monitor", "tier") is True
            assert await uow.waitlist_rules.remove("monitor", "tier") is False
            await uow.commit()
        async with uow_factory() as uow:
            assert rule not in await uow.waitlist_rules.list()

    async def test_uncommitted_rule_changes_leave_no_trace(self, uow_factory: UowFactory) -> None:
        kept = WaitlistFieldRule(waitlist="monitor", field="tier", max_length=5)
        async with uow_factory() as uow:
            await uow.waitlist_rules.set(kept)
            await uow.commit()
        async with uow_factory() as uow:
            before = await uow.waitlist_rules.list()
        async with uow_factory() as uow:
            await uow.waitlist_rules.set(
                WaitlistFieldRule(waitlist="monitor", field="other", max_length=1)
            )
            await uow.waitlist_rules.remove("monitor", "tier")
        async with uow_factory() as uow:
            assert await uow.waitlist_rules.list() == before
