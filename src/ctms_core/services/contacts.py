"""Contact use cases: one transaction each, the rules of docs/contract.md §4.1, §4.2, §4.3, §4.4, §4.5, §4.6, §4.7, §7; docs/compatibility.md §2."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import msgspec
from msgspec import UnsetType
from msgspec.structs import replace

from ctms_core.domain.acoustic import deletion_of
from ctms_core.domain.contact import (
    EMAIL_DATA,
    GROUP_DATA,
    GROUP_TYPES,
    NEWSLETTER_DATA,
    WAITLIST_DATA,
    Amo,
    Contact,
    Email,
    Fxa,
    Identity,
    Mofo,
    Newsletter,
    Waitlist,
    data_of,
    identity_of,
    is_default_group,
    sort_by_name,
)
from ctms_core.domain.erasure import ErasureRecord, erasure_hash
from ctms_core.domain.errors import (
    ContactChangedError,
    ContactConflictError,
    ContactNotFoundError,
    EmailNotFoundError,
    UniqueConstraintViolation,
    UnprocessableRequestError,
)
from ctms_core.domain.inputs import ContactInput, ContactPatch, Unsubscribe
from ctms_core.domain.legacy_waitlists import (
    NO_TRANSLATION,
    LegacyTranslation,
    NewsletterSignal,
    translate_legacy_waitlists,
)
from ctms_core.domain.lookup import LookupCriteria
from ctms_core.domain.updates import Cursor, UpdatesPage, UpdatesQuery
from ctms_core.ports.clock import Clock, IdGenerator
from ctms_core.ports.contact_observer import NO_CONTACT_OBSERVER, ContactObserver
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.acoustic_products import products_of_contacts
from ctms_core.services.erasures import drop_undelivered_erasure_addresses

POST_CONFLICT = "Contact already exists"
PUT_CONFLICT = "Contact with primary_email or basket_token already exists"
PATCH_CONFLICT = "Contact with primary_email, basket_token, mofo_email_id, or fxa_id already exists"
# Optimistic tries of a PATCH before it reads under the contact's lock (`ContactService.patch`).
OPTIMISTIC_PATCH_ATTEMPTS = 3

Child = TypeVar("Child", Amo, Fxa, Mofo, Newsletter, Waitlist)
Item = TypeVar("Item", Newsletter, Waitlist)

_DATA_FIELDS: dict[type[msgspec.Struct], tuple[str, ...]] = {
    Amo: GROUP_DATA["amo"],
    Fxa: GROUP_DATA["fxa"],
    Mofo: GROUP_DATA["mofo"],
    Newsletter: NEWSLETTER_DATA,
    Waitlist: WAITLIST_DATA,
}


@dataclass(frozen=True, slots=True)
class ContactWriteResult:
    """The contact as stored after the use case, and whether the use case created it. (Counters go to
    the service's `ContactObserver`.)"""

    contact: Contact
    created: bool


def _same_data(left: msgspec.Struct, right: msgspec.Struct) -> bool:
    names = _DATA_FIELDS[type(left)]
    return data_of(left, names) == data_of(right, names)


def _stamped(child: Child, *, created: datetime | None, updated: datetime) -> Child:
    if isinstance(child, Fxa | Mofo):  # their timestamps are not part of the contract
        return child
    return replace(child, create_timestamp=created, update_timestamp=updated)


def _next_child(previous: Child | None, proposed: Child, now: datetime) -> Child:
    """Keep a child's identity: its create timestamp stays, and its update timestamp moves only when its
    data changed (docs/contract.md §4.3)."""
    if previous is None:
        return _stamped(proposed, created=now, updated=now)
    if _same_data(previous, proposed):
        return previous
    created = (
        previous.create_timestamp if isinstance(previous, Amo | Newsletter | Waitlist) else None
    )
    return _stamped(proposed, created=created, updated=now)


def _replay_matches(stored: Contact, proposed: ContactInput) -> bool:
    """Idempotent equality of docs/contract.md §5.10: a POST replay equals the stored contact on every input field."""
    if data_of(stored.email, EMAIL_DATA) != proposed.email:
        return False
    for group in ("amo", "fxa", "mofo"):
        left, right = getattr(stored, group), getattr(proposed, group)
        if (left is None) != (right is None):
            return False
        if left is not None and not _same_data(left, right):
            return False

    def items(values: Iterable[Item], names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [data_of(item, names) for item in sort_by_name(values)]

    return items(stored.newsletters, NEWSLETTER_DATA) == items(
        proposed.newsletters, NEWSLETTER_DATA
    ) and items(stored.waitlists, WAITLIST_DATA) == items(proposed.waitlists, WAITLIST_DATA)


def _apply_item_changes(
    current: tuple[Item, ...],
    changes: tuple[dict[str, Any], ...] | Unsubscribe | UnsetType,
    make: Callable[..., Item],
    now: datetime,
) -> tuple[Item, ...]:
    """PATCH rules for newsletters and waitlists (docs/contract.md §4.4).

    `"UNSUBSCRIBE"` unsubscribes every item. A list updates items by name with only the keys given (no
    implicit re-subscription: `{"name": "x"}` leaves an unsubscribed item unsubscribed) and creates an
    unknown name only when it is not explicitly unsubscribed. Items not mentioned are untouched.
    """
    if isinstance(changes, UnsetType):
        return current
    if changes == "UNSUBSCRIBE":
        return tuple(
            _next_child(item, replace(item, subscribed=False), now) if item.subscribed else item
            for item in current
        )
    by_name = {item.name: item for item in current}
    for change in changes:
        name = change["name"]
        existing = by_name.get(name)
        if existing is not None:
            by_name[name] = _next_child(existing, replace(existing, **change), now)
        elif change.get("subscribed", True):
            by_name[name] = _next_child(None, make(**change), now)
    return sort_by_name(by_name.values())


def _signals_of_items(newsletters: Iterable[Newsletter]) -> list[NewsletterSignal]:
    return [NewsletterSignal(item.name, unsubscribes=not item.subscribed) for item in newsletters]


def _items_from_changes(
    changes: Iterable[dict[str, Any]], stored: Mapping[str, Waitlist]
) -> tuple[Waitlist, ...]:
    """Whole waitlist items for POST/PUT: a stored item with the change applied, or a new one."""
    items = []
    for change in changes:
        kept = stored.get(change["name"])
        items.append(replace(kept, **change) if kept is not None else Waitlist(**change))
    return tuple(items)


class ContactService:
    """Create, replace, patch, delete and read contacts.

    The service publishes its counters (contacts queued for sync, legacy waitlist requests, lost write
    races, dropped erasure addresses) to `observer`, once the transaction that caused them committed.

    `erasure_salt` keys the hashes of erased addresses in the audit trail (`derive_erasure_salt`); every
    process of a deployment must use the same one for the hashes to be comparable. Without it a random
    salt is drawn, so hashes are still no PII but cannot be matched later (tests, throwaway embeddings).
    """

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        clock: Clock,
        ids: IdGenerator,
        *,
        erasure_salt: bytes | None = None,
        erasure_retention: timedelta | None = None,
        observer: ContactObserver = NO_CONTACT_OBSERVER,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._ids = ids
        self._erasure_salt = erasure_salt or secrets.token_bytes(32)
        # How long an erased address may wait for delivery to Acoustic; None: Acoustic sync is off.
        self._erasure_retention = erasure_retention
        self._observer = observer

    async def get(self, email_id: uuid.UUID) -> Contact:
        """The contact with this id, or `ContactNotFoundError`."""
        async with self._uow_factory() as uow:
            contact = await uow.contacts.get(email_id)
        if contact is None:
            raise ContactNotFoundError
        return contact

    async def create(self, proposed: ContactInput) -> ContactWriteResult:
        """POST /ctms (docs/contract.md §4.2).

        Rules: without `email_id` the server generates one. If the id exists, an identical replay (docs/contract.md §5.10)
        returns the stored contact unchanged (`created=False`, nothing written) and any difference is a
        conflict. A generated id is new, so it is not looked up first (one database round trip less per
        sign-up); should it exist all the same, the insert's clash on `email_id` is the same conflict.
        All-default satellites are not stored; every newsletter and waitlist item is inserted,
        unsubscribed ones too. A unique identifier held by another contact → `ContactConflictError`
        naming the clashing fields, and nothing is written.
        """
        email_id = proposed.email_id or self._ids.new_email_id()
        async with self._uow_factory() as uow:
            if proposed.email_id is not None:
                existing = await uow.contacts.get(email_id)
                if existing is not None:
                    if _replay_matches(existing, proposed):
                        return ContactWriteResult(existing, created=False)
                    raise ContactConflictError(POST_CONFLICT, ["email_id"])
            now = self._clock.now()
            waitlists, translation = self._input_waitlists(proposed, stored={})
            contact = Contact(
                email=Email(
                    **proposed.email, email_id=email_id, create_timestamp=now, update_timestamp=now
                ),
                amo=_next_child(None, proposed.amo, now) if proposed.amo else None,
                fxa=proposed.fxa,
                mofo=proposed.mofo,
                newsletters=sort_by_name(_next_child(None, n, now) for n in proposed.newsletters),
                waitlists=sort_by_name(_next_child(None, w, now) for w in waitlists),
            )
            try:
                await uow.contacts.add(contact, enqueue_at=now)
                await uow.commit()  # a storage may write only now, and find the clash then
            except UniqueConstraintViolation as violation:
                raise ContactConflictError(POST_CONFLICT, violation.fields) from None
        self._written(translation)
        return ContactWriteResult(contact, created=True)

    async def replace(self, email_id: uuid.UUID, proposed: ContactInput) -> ContactWriteResult:
        """PUT /ctms/{email_id} (docs/contract.md §4.3): create or replace the whole contact.

        Rules: the body's `email_id` must equal the path's. Omitted fields take their defaults; absent or
        all-default satellites are removed; the newsletter and waitlist sets become exactly the body's
        (legacy input translated first, docs/contract.md §6). Items that stay keep their create timestamp, and their
        update timestamp moves only when their data changed (docs/contract.md §4.3).
        """
        if proposed.email_id != email_id:
            raise UnprocessableRequestError("email_id in path must match email_id in contact")
        async with self._uow_factory() as uow:
            stored = await uow.contacts.get_versioned(email_id, for_update=True)
            previous = None if stored is None else stored.contact
            now = self._clock.now()
            stored_waitlists = {w.name: w for w in previous.waitlists} if previous else {}
            waitlists, translation = self._input_waitlists(proposed, stored=stored_waitlists)
            old_newsletters = {n.name: n for n in previous.newsletters} if previous else {}
            email = Email(
                **proposed.email,
                email_id=email_id,
                create_timestamp=previous.email.create_timestamp if previous else now,
                update_timestamp=now,
            )
            contact = Contact(
                email=email,
                amo=self._replaced_group(previous, proposed, "amo", now),
                fxa=self._replaced_group(previous, proposed, "fxa", now),
                mofo=self._replaced_group(previous, proposed, "mofo", now),
                newsletters=sort_by_name(
                    _next_child(old_newsletters.get(n.name), n, now) for n in proposed.newsletters
                ),
                waitlists=sort_by_name(
                    _next_child(stored_waitlists.get(w.name), w, now) for w in waitlists
                ),
            )
            try:
                if stored is None:
                    await uow.contacts.add(contact, enqueue_at=now)
                else:
                    await uow.contacts.save(
                        contact,
                        previous=stored.contact,
                        expected_version=stored.version,
                        enqueue_at=now,
                    )
                await uow.commit()
            except UniqueConstraintViolation as violation:
                raise ContactConflictError(PUT_CONFLICT, violation.fields) from None
        self._written(translation)
        return ContactWriteResult(contact, created=previous is None)

    async def patch(self, email_id: uuid.UUID, changes: ContactPatch) -> ContactWriteResult:
        """PATCH /ctms/{email_id} (docs/contract.md §4.4): change only what the body mentions.

        Rules: `email.email_id` may not differ from the path (checked before existence). `"DELETE"`
        removes a satellite; an object creates it (unless all-default) or updates only the given keys, and
        a satellite that ends up all-default is removed. Newsletters/waitlists follow
        `_apply_item_changes`; legacy waitlist input is translated first (docs/contract.md §6). The e-mail's update
        timestamp always moves, even for `{}`. Conflicts leave nothing changed.

        Concurrency (optimistic): read the contact with its version, without a lock → compute the
        change → save it expecting that version → on `ContactChangedError` (another write came
        first) start over from a fresh read. After `OPTIMISTIC_PATCH_ATTEMPTS` lost races it reads
        under the contact's lock, which expects no version and cannot lose. Either way every PATCH
        applies on top of the state left by the ones before it: none is lost.
        """
        requested_id = changes.email.get("email_id")
        if requested_id is not None and requested_id != email_id:
            raise UnprocessableRequestError("cannot change email_id")
        for lost_races in range(OPTIMISTIC_PATCH_ATTEMPTS):
            try:
                return await self._patch_once(email_id, changes, lost_races=lost_races)
            except ContactChangedError:
                continue  # another write came first: apply the changes to what it left
        return await self._patch_once(email_id, changes, lost_races=OPTIMISTIC_PATCH_ATTEMPTS)

    async def _patch_once(
        self, email_id: uuid.UUID, changes: ContactPatch, *, lost_races: int
    ) -> ContactWriteResult:
        """One try of `patch`, after `lost_races` lost ones: optimistic until they reach
        `OPTIMISTIC_PATCH_ATTEMPTS`, then under the contact's lock."""
        async with self._uow_factory() as uow:
            locked = lost_races >= OPTIMISTIC_PATCH_ATTEMPTS
            stored = await uow.contacts.get_versioned(email_id, for_update=locked)
            if stored is None:
                raise ContactNotFoundError
            previous = stored.contact
            now = self._clock.now()
            email_changes = {
                key: value for key, value in changes.email.items() if key != "email_id"
            }
            groups: dict[str, Any] = {}
            for group in ("amo", "fxa", "mofo"):
                current = getattr(previous, group)
                operation = changes.groups.get(group)
                if operation is None:
                    groups[group] = current
                elif operation == "DELETE":
                    groups[group] = None
                else:
                    candidate = replace(current or GROUP_TYPES[group](), **operation)
                    groups[group] = (
                        None
                        if is_default_group(group, candidate)
                        else _next_child(current, candidate, now)
                    )
            waitlist_changes, translation = self._patch_waitlist_changes(changes, previous)
            contact = Contact(
                email=replace(previous.email, **email_changes, update_timestamp=now),
                newsletters=_apply_item_changes(
                    previous.newsletters, changes.newsletters, Newsletter, now
                ),
                waitlists=_apply_item_changes(previous.waitlists, waitlist_changes, Waitlist, now),
                **groups,
            )
            try:
                await uow.contacts.save(
                    contact, previous=previous, expected_version=stored.version, enqueue_at=now
                )
                await uow.commit()
            except UniqueConstraintViolation as violation:
                raise ContactConflictError(PATCH_CONFLICT, violation.fields) from None
        self._written(translation, lost_races=lost_races)
        return ContactWriteResult(contact, created=False)

    async def delete(self, primary_email: str, *, erased_by: str | None = None) -> list[Identity]:
        """DELETE /ctms/{primary_email} and `ctms delete-bulk` (docs/contract.md §4.5, §14.2): erase every contact whose
        primary e-mail matches ignoring case, with all its rows; returns their identities as they were.

        Each erased contact leaves an audit record in the same transaction: the time, `erased_by` (the
        API client, None for the command line), its `email_id` and the salted hash of its address —
        never the address itself. When Acoustic sync is on (`erasure_retention` set) it queues its
        erasure from Acoustic (main-table recipient and relational rows, products included), captured
        before the rows are deleted: the address waits in the queue at most `erasure_retention`. When
        it is off, nothing is queued and the audit record says the address was dropped at once. Either
        way the same transaction drops the queued erasures that waited too long
        (`drop_undelivered_erasure_addresses`).
        """
        if "\x00" in primary_email:  # no stored address can hold one
            raise EmailNotFoundError(primary_email)
        async with self._uow_factory() as uow:
            contacts = await uow.contacts.find_by_primary_email(primary_email)
            if not contacts:
                raise EmailNotFoundError(primary_email)
            now = self._clock.now()
            products = await products_of_contacts(uow, contacts)
            queued = self._erasure_retention is not None
            for contact in contacts:
                await uow.contacts.delete(contact.email_id)
                if queued:
                    await uow.sync_queue.enqueue_erasure(
                        deletion_of(contact, products.get(contact.email_id, ())), now
                    )
                await uow.erasures.add(
                    ErasureRecord(
                        erased_at=now,
                        client_id=erased_by,
                        email_id=contact.email_id,
                        email_hash=erasure_hash(contact.email.primary_email, self._erasure_salt),
                        address_dropped_at=None if queued else now,
                    )
                )
            dropped = await drop_undelivered_erasure_addresses(uow, now, self._erasure_retention)
            await uow.commit()
        if queued:
            self._observer.count_pending_acoustic_sync(len(contacts))
        if dropped:
            self._observer.count_erasure_addresses_dropped(len(dropped))
        return [identity_of(contact) for contact in contacts]

    async def lookup(self, criteria: LookupCriteria) -> list[Contact]:
        """GET /ctms (docs/contract.md §4.6): contacts matching every given identifier (possibly several, or none).

        A value with a NUL character matches nothing (no stored text can hold one)."""
        if any("\x00" in str(value) for value in criteria.given().values()):
            return []
        async with self._uow_factory() as uow:
            return await uow.contacts.lookup(criteria)

    async def identities(self, criteria: LookupCriteria) -> list[Identity]:
        return [identity_of(contact) for contact in await self.lookup(criteria)]

    async def identity(self, email_id: uuid.UUID) -> Identity:
        return identity_of(await self.get(email_id))

    async def updates(self, query: UpdatesQuery) -> UpdatesPage:
        """GET /updates (docs/contract.md §2.6, §7): one page in `(update_timestamp, email_id)` order.

        Rules: `end` defaults to now; a full page hands out the cursor of its last contact (the next page,
        possibly empty, starts strictly after it); a shorter page is the last one (`after` None).
        """
        end = query.end or self._clock.now()
        async with self._uow_factory() as uow:
            items = await uow.contacts.updates_page(
                start=query.start,
                end=end,
                after=query.after,
                limit=query.limit,
                mofo_relevant=query.mofo_relevant,
            )
        after = None
        if len(items) == query.limit and items:
            last = items[-1].email
            assert last.update_timestamp is not None
            after = Cursor(last.email_id, last.update_timestamp).encode()
        return UpdatesPage(
            start=query.start,
            end=end,
            limit=query.limit,
            mofo_relevant=query.mofo_relevant,
            items=tuple(items),
            after=after,
        )

    # --- helpers ------------------------------------------------------------------------------------

    def _written(self, translation: LegacyTranslation, *, lost_races: int = 0) -> None:
        """Publish the counters of a committed contact write, which always queues the contact."""
        self._observer.count_pending_acoustic_sync(1)
        if translation.used:
            self._observer.count_legacy_waitlists_request()
        if lost_races:
            self._observer.count_contact_write_retries(lost_races)

    @staticmethod
    def _input_waitlists(
        proposed: ContactInput, stored: Mapping[str, Waitlist]
    ) -> tuple[tuple[Waitlist, ...], LegacyTranslation]:
        if proposed.waitlists:
            # modern clients win (docs/contract.md §6.1, §6.2)
            return proposed.waitlists, NO_TRANSLATION
        translation = translate_legacy_waitlists(
            newsletters=_signals_of_items(proposed.newsletters),
            unsubscribe_all_newsletters=False,
            vpn=proposed.vpn_waitlist,
            relay=proposed.relay_waitlist,
            stored=stored,
            newsletter_signals_count=False,
        )
        if not translation.changes:
            return proposed.waitlists, translation
        return _items_from_changes(translation.changes, stored), translation

    @staticmethod
    def _patch_waitlist_changes(
        changes: ContactPatch, previous: Contact
    ) -> tuple[tuple[dict[str, Any], ...] | Unsubscribe | UnsetType, LegacyTranslation]:
        if changes.waitlists == "UNSUBSCRIBE" or (
            isinstance(changes.waitlists, tuple) and changes.waitlists
        ):
            return changes.waitlists, NO_TRANSLATION
        newsletters = changes.newsletters
        translation = translate_legacy_waitlists(
            newsletters=[
                NewsletterSignal(item["name"], unsubscribes=item.get("subscribed") is False)
                for item in newsletters
            ]
            if isinstance(newsletters, tuple)
            else None,
            unsubscribe_all_newsletters=newsletters == "UNSUBSCRIBE",
            vpn=changes.vpn_waitlist,
            relay=changes.relay_waitlist,
            stored={w.name: w for w in previous.waitlists},
            newsletter_signals_count=True,
        )
        if translation.changes:
            return translation.changes, translation
        return changes.waitlists, translation

    @staticmethod
    def _replaced_group(
        previous: Contact | None, proposed: ContactInput, group: str, now: datetime
    ) -> Any:
        new = getattr(proposed, group)
        if new is None:
            return None
        return _next_child(getattr(previous, group) if previous else None, new, now)
