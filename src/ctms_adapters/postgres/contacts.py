"""`ContactRepository` on PostgreSQL with SQLAlchemy Core.

Every read is one statement returning one JSON document per contact (see `contact_rows`), with the
contact's version when it is read to be changed (`get_versioned`). Writes touch only what differs from the
stored state the use case read, in one statement built by `contact_write`. Statements are built once at
import; only lookups, whose WHERE clause depends on which identifiers were given, are assembled per call.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    String,
    Table,
    Uuid,
    any_,
    bindparam,
    delete,
    exists,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ctms_adapters.postgres.coalescing import KeyedRead, ReadCoalescer
from ctms_adapters.postgres.contact_rows import (
    CONTACT_DOCUMENT,
    CONTACT_SOURCE,
    decode_contact,
    select_contacts,
)
from ctms_adapters.postgres.contact_write import (
    VERSION,
    ContactWrite,
    Guard,
    add_steps,
    save_steps,
)
from ctms_adapters.postgres.pending_writes import PendingWrites
from ctms_adapters.postgres.tables import amo, emails, fxa, mofo
from ctms_adapters.postgres.transaction import DriverStatement, TransactionScope
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_adapters.postgres.unique_violations import unique_constraint_of
from ctms_core.domain.contact import Contact
from ctms_core.domain.errors import ContactChangedError, UniqueConstraintViolation
from ctms_core.domain.lookup import LookupCriteria
from ctms_core.domain.updates import Cursor
from ctms_core.ports.repositories import StoredContact

_TIMESTAMP = DateTime(timezone=True)

# The unique constraints of a contact and the field each one protects (the fallback when the clashing
# row is gone by the time we look for it).
CONSTRAINT_FIELDS: Final = {
    "emails_pkey": "email_id",
    "idx_email_primary_unique_email_lower": "primary_email",
    "emails_basket_token_key": "basket_token",
    "fxa_fxa_id_key": "fxa_id",
    "mofo_mofo_email_id_key": "mofo_email_id",
}
# The order conflicts are reported in.
UNIQUE_FIELDS: Final = ("email_id", "primary_email", "basket_token", "fxa_id", "mofo_email_id")


# --- reads ---------------------------------------------------------------------------------------------

# Locks the `emails` row (the contact's lock) and reads the contact in one statement. The document is
# built with the statement's snapshot, taken before any wait for the lock: if another transaction
# changed the contact meanwhile, the lock returns the row's new version but the children as they were.
# Every write of a contact rewrites its `emails` row (`contact_write.save_steps`), so the row's version
# (`xmin`) tells: when the locked version is not the one the snapshot saw, the children are read again by
# a second statement, whose fresh READ COMMITTED snapshot includes what the previous lock holder committed.
_SNAPSHOT_ROW = emails.alias("snapshot_row")
_LOCK_AND_READ = DriverStatement(
    select(
        (
            literal_column("emails.xmin")
            == select(literal_column("snapshot_row.xmin"))
            .where(_SNAPSHOT_ROW.c.email_id == bindparam("email_id", type_=Uuid()))
            .scalar_subquery()
        ).label("unchanged_since_snapshot"),
        CONTACT_DOCUMENT,
    )
    .select_from(CONTACT_SOURCE)
    .where(emails.c.email_id == bindparam("email_id", type_=Uuid()))
    .with_for_update(of=emails)
)

_BY_IDS = DriverStatement(
    select_contacts()
    .where(emails.c.email_id == any_(bindparam("email_ids", type_=ARRAY(Uuid()))))
    .order_by(emails.c.email_id)
)


def _updates_statement(*, after: bool, mofo_relevant: bool | None) -> DriverStatement:
    conditions: list[ColumnElement[bool]] = [
        emails.c.update_timestamp >= bindparam("start", type_=_TIMESTAMP),
        emails.c.update_timestamp < bindparam("end", type_=_TIMESTAMP),
    ]
    if after:
        conditions.append(
            tuple_(emails.c.update_timestamp, emails.c.email_id)
            > tuple_(
                bindparam("after_timestamp", type_=_TIMESTAMP),
                bindparam("after_email_id", type_=Uuid()),
            )
        )
    # A NULL `mofo_relevant` reads as False (tolerant reads), so it filters as False too.
    if mofo_relevant is True:
        conditions.append(mofo.c.mofo_relevant.is_(True))
    elif mofo_relevant is False:
        conditions.append(mofo.c.mofo_relevant.is_not(True))
    return DriverStatement(
        select_contacts()
        .where(*conditions)
        .order_by(emails.c.update_timestamp, emails.c.email_id)
        .limit(bindparam("limit", type_=Integer()))
    )


_UPDATES = {
    (after, relevance): _updates_statement(after=after, mofo_relevant=relevance)
    for after in (False, True)
    for relevance in (None, True, False)
}

# primary_email / fxa_primary_email compare through lower(), served by the functional indexes.
_LOOKUP_COLUMNS: Final[dict[str, ColumnElement[Any]]] = {
    "email_id": emails.c.email_id,
    "primary_email": func.lower(emails.c.primary_email),
    "basket_token": emails.c.basket_token,
    "sfdc_id": emails.c.sfdc_id,
    "mofo_contact_id": mofo.c.mofo_contact_id,
    "mofo_email_id": mofo.c.mofo_email_id,
    "amo_user_id": amo.c.user_id,
    "fxa_id": fxa.c.fxa_id,
    "fxa_primary_email": func.lower(fxa.c.primary_email),
}
_CASE_INSENSITIVE: Final = frozenset({"primary_email", "fxa_primary_email"})


def _lookup_type(name: str) -> Uuid[Any] | String:
    return Uuid() if name == "email_id" else String()


def _lookup_condition(name: str) -> ColumnElement[bool]:
    """`<identifier> = :<identifier>`, ignoring case where the identifier does."""
    value = bindparam(name, type_=_lookup_type(name))
    if name in _CASE_INSENSITIVE:
        return _LOOKUP_COLUMNS[name] == func.lower(value)
    return _LOOKUP_COLUMNS[name] == value


def _lookup_statement(names: Iterable[str]) -> Select[str]:
    """The documents of the contacts matching every identifier of `names`, ordered by id."""
    return (
        select(CONTACT_DOCUMENT)
        .select_from(CONTACT_SOURCE)
        .where(*(_lookup_condition(name) for name in names))
        .order_by(emails.c.email_id)
    )


def _keyed_lookup(name: str) -> KeyedRead:
    """`(key, document, version)` of the contacts whose `name` is one of the keys, ordered by id."""
    wanted = (
        func.unnest(bindparam(KeyedRead.KEYS, type_=ARRAY(_lookup_type(name))))
        .table_valued("key")
        .render_derived(name="wanted")
    )
    column = _LOOKUP_COLUMNS[name]
    condition = column == (func.lower(wanted.c.key) if name in _CASE_INSENSITIVE else wanted.c.key)
    return KeyedRead(
        f"contacts by {name}",
        select(wanted.c.key, CONTACT_DOCUMENT, VERSION)
        .select_from(wanted.join(CONTACT_SOURCE, condition))
        .order_by(emails.c.email_id),
    )


# Lookups by one identifier (GET /ctms/{email_id}, GET /ctms?primary_email=..., DELETE): concurrent ones
# share a statement (`ReadCoalescer`).
_LOOKUP_BY_ONE: Final = {name: _keyed_lookup(name) for name in _LOOKUP_COLUMNS}


def _exists_other(table: Table, column: ColumnElement[Any], value: ColumnElement[Any]) -> Any:
    """Whether a contact other than `:email_id` holds `value`."""
    return exists().where(column == value, table.c.email_id != bindparam("email_id", type_=Uuid()))


_CONFLICTS = select(
    exists().where(emails.c.email_id == bindparam("email_id", type_=Uuid())).label("email_id"),
    _exists_other(
        emails, func.lower(emails.c.primary_email), func.lower(bindparam("primary_email"))
    ).label("primary_email"),
    _exists_other(emails, emails.c.basket_token, bindparam("basket_token", type_=String())).label(
        "basket_token"
    ),
    _exists_other(fxa, fxa.c.fxa_id, bindparam("fxa_id", type_=String())).label("fxa_id"),
    _exists_other(mofo, mofo.c.mofo_email_id, bindparam("mofo_email_id", type_=String())).label(
        "mofo_email_id"
    ),
)


_DELETE_CONTACT = delete(emails).where(emails.c.email_id == bindparam("contact_id", type_=Uuid()))


@reports_unavailability
class PostgresContactRepository:
    """Reads are one statement each (`contact_rows`); reads by one identifier outside a transaction are
    shared with other units' (`ReadCoalescer`). `add` and `save` hold their write, queue entry
    included, in the unit's `PendingWrites`, sent as one statement (`contact_write`)."""

    def __init__(
        self, scope: TransactionScope, pending: PendingWrites, reads: ReadCoalescer | None = None
    ) -> None:
        self._scope = scope
        self._pending = pending
        self._reads = reads

    # --- reads -----------------------------------------------------------------------------------------

    async def _keyed_rows(self, read: KeyedRead, key: Any) -> list[Sequence[Any]]:
        """The rows `read` finds for `key`: through the read coalescer outside a transaction, else on
        the unit's own connection, inside its transaction."""
        await self._scope.settle()  # the unit reads its own writes
        if not self._scope.in_transaction and self._reads is not None:
            return await self._reads.rows(read, key)
        (rows,) = await read.rows_of(self._scope, [key])
        return rows

    async def get(self, email_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        if for_update:
            stored = await self.get_versioned(email_id, for_update=True)
            return None if stored is None else stored.contact
        rows = await self._keyed_rows(_LOOKUP_BY_ONE["email_id"], email_id)
        return decode_contact(rows[0][1]) if rows else None

    async def get_versioned(
        self, email_id: uuid.UUID, *, for_update: bool = False
    ) -> StoredContact | None:
        if for_update:
            await self._scope.lock()
            rows = await self._scope.execute(_LOCK_AND_READ, {"email_id": email_id})
            if not rows:
                return None
            ((unchanged_since_snapshot, document),) = rows
            if unchanged_since_snapshot:
                return StoredContact(decode_contact(document), None)
            (row,) = await self._keyed_rows(_LOOKUP_BY_ONE["email_id"], email_id)
            return StoredContact(decode_contact(row[1]), None)  # locked until commit: no version
        rows = await self._keyed_rows(_LOOKUP_BY_ONE["email_id"], email_id)
        if not rows:
            return None
        ((_, document, version),) = rows
        return StoredContact(decode_contact(document), version)

    async def get_many(self, email_ids: Sequence[uuid.UUID]) -> list[Contact]:
        if not email_ids:
            return []
        rows = await self._scope.rows(_BY_IDS, {"email_ids": list(email_ids)})
        return [decode_contact(row[0]) for row in rows]

    async def find_by_primary_email(self, primary_email: str) -> list[Contact]:
        return await self.lookup(LookupCriteria(primary_email=primary_email))

    async def lookup(self, criteria: LookupCriteria) -> list[Contact]:
        parameters: dict[str, Any] = {}
        for name, value in criteria.given().items():
            if name == "email_id" and not isinstance(value, uuid.UUID):
                try:
                    value = uuid.UUID(value)
                except ValueError:
                    return []  # not a UUID: matches no contact (and the criteria are ANDed)
            parameters[name] = value if name == "email_id" else str(value)
        if not parameters:
            return []  # no identifier: never the whole table
        if len(parameters) == 1:
            ((name, value),) = parameters.items()
            rows = await self._keyed_rows(_LOOKUP_BY_ONE[name], value)
            return [decode_contact(row[1]) for row in rows]
        result = await self._scope.run(_lookup_statement(parameters), parameters)
        return [decode_contact(row[0]) for row in result]

    async def updates_page(
        self,
        *,
        start: datetime,
        end: datetime,
        after: Cursor | None,
        limit: int,
        mofo_relevant: bool | None,
    ) -> list[Contact]:
        parameters: dict[str, Any] = {"start": start, "end": end, "limit": limit}
        if after is not None:
            parameters["after_timestamp"] = after.update_timestamp
            parameters["after_email_id"] = after.email_id
        rows = await self._scope.rows(_UPDATES[(after is not None, mofo_relevant)], parameters)
        return [decode_contact(row[0]) for row in rows]

    async def find_conflicts(self, contact: Contact) -> list[str]:
        return [name for name in await self._taken_fields(contact) if name != "email_id"]

    async def _taken_fields(self, contact: Contact) -> list[str]:
        """Unique fields of `contact` already held: `email_id` by any row, the others by another
        contact."""
        row = (
            await self._scope.run(
                _CONFLICTS,
                {
                    "email_id": contact.email_id,
                    "primary_email": contact.email.primary_email,
                    "basket_token": contact.email.basket_token,
                    "fxa_id": contact.fxa.fxa_id if contact.fxa else None,
                    "mofo_email_id": contact.mofo.mofo_email_id if contact.mofo else None,
                },
            )
        ).one()
        return [name for name in UNIQUE_FIELDS if row._mapping[name]]

    # --- writes ----------------------------------------------------------------------------------------

    async def add(self, contact: Contact, *, enqueue_at: datetime | None = None) -> None:
        """Pending until the unit commits (`PendingWrites`): a clash on a unique identifier surfaces
        from the call that sends it, usually the unit's `commit()`."""
        steps, parameters = add_steps(contact, enqueue_at)
        await self._pending.add(
            ContactWrite(
                steps, parameters, functools.partial(self._violation, contact, adding=True)
            )
        )

    async def save(
        self,
        contact: Contact,
        *,
        previous: Contact,
        expected_version: str | None,
        enqueue_at: datetime | None = None,
    ) -> None:
        """Pending like `add`; only what differs from `previous` is written. Guarded by
        `expected_version`: the write applies only if the contact still has it (None: read under its
        lock, nothing to check), else the call that sends it raises `ContactChangedError` and nothing
        of it is written, queue entry included."""
        if contact.email_id != previous.email_id:
            raise ValueError("save() cannot change a contact's email_id")
        steps, parameters = save_steps(contact, previous, expected_version, enqueue_at)
        if not steps:
            return  # nothing differs
        await self._pending.add(
            ContactWrite(
                steps,
                parameters,
                functools.partial(self._violation, contact, adding=False),
                Guard(contact.email_id, ContactChangedError),
            )
        )

    async def delete(self, email_id: uuid.UUID) -> None:
        await self._scope.begin()
        await self._scope.run(_DELETE_CONTACT, {"contact_id": email_id})

    async def _violation(
        self, contact: Contact, error: IntegrityError, *, adding: bool
    ) -> UniqueConstraintViolation:
        """The fields that made a write fail, all of them when several clash at once. Anything but a
        unique violation of a contact identifier is not a conflict: it is re-raised as it was."""
        constraint = unique_constraint_of(error)
        if constraint is None:
            raise error
        fields = await self._taken_fields(contact)
        if not adding:
            fields = [name for name in fields if name != "email_id"]
        if not fields:
            if constraint not in CONSTRAINT_FIELDS:
                raise error
            fields = [CONSTRAINT_FIELDS[constraint]]
        return UniqueConstraintViolation(fields)
