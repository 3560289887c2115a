"""`ContactRepository` on PostgreSQL with SQLAlchemy Core.

Every read is one statement returning one JSON document per contact (see `contact_rows`). Writes touch only
what differs from the stored state the use case read. Statements are built once at import; only lookups,
whose WHERE clause depends on which identifiers were given, are assembled per call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
from sqlalchemy import (
    DateTime,
    Delete,
    Insert,
    String,
    Table,
    Update,
    Uuid,
    any_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ctms_adapters.postgres.contact_rows import decode_contact, select_contacts
from ctms_adapters.postgres.tables import amo, emails, fxa, mofo, newsletters, waitlists
from ctms_adapters.postgres.transaction import TransactionScope
from ctms_adapters.postgres.unique_violations import unique_constraint_of
from ctms_core.domain.contact import Amo, Contact, Email, Fxa, Mofo, Newsletter, Waitlist
from ctms_core.domain.errors import UniqueConstraintViolation
from ctms_core.domain.lookup import LookupCriteria
from ctms_core.domain.updates import Cursor

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

_BY_ID = select_contacts().where(emails.c.email_id == bindparam("email_id", type_=Uuid()))

# Locks only the `emails` row (the contact's lock); its children are read by a second statement, whose
# fresh READ COMMITTED snapshot includes whatever the previous lock holder committed. Reading them in the
# locking statement would return the children as of before the wait, and a save based on them would undo
# the other transaction's changes.
_LOCK = (
    select(emails.c.email_id)
    .where(emails.c.email_id == bindparam("email_id", type_=Uuid()))
    .with_for_update()
)

_BY_IDS = (
    select_contacts()
    .where(emails.c.email_id == any_(bindparam("email_ids", type_=ARRAY(Uuid()))))
    .order_by(emails.c.email_id)
)


def _updates_statement(*, after: bool, mofo_relevant: bool | None) -> Any:
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
    return (
        select_contacts()
        .where(*conditions)
        .order_by(emails.c.update_timestamp, emails.c.email_id)
        .limit(bindparam("limit"))
    )


_UPDATES = {
    (after, relevance): _updates_statement(after=after, mofo_relevant=relevance)
    for after in (False, True)
    for relevance in (None, True, False)
}

# primary_email / fxa_primary_email compare through lower(), served by the functional indexes.
_LOOKUP_COLUMNS: Final[dict[str, ColumnElement[Any]]] = {
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


def _exists_other(table: Table, column: ColumnElement[Any], value: ColumnElement[Any]) -> Any:
    """Whether a contact other than `:email_id` holds `value`."""
    return exists().where(
        column == value, table.c.email_id != bindparam("email_id", type_=Uuid())
    )


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


# --- writes --------------------------------------------------------------------------------------------


def _stamp(name: str) -> ColumnElement[Any]:
    """A timestamp from the domain object, or the database's `now()` when the object has none."""
    return func.coalesce(bindparam(name, type_=_TIMESTAMP), func.now())


def _values(table: Table, names: Iterable[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in names:
        if name in ("create_timestamp", "update_timestamp"):
            values[name] = _stamp(name)
        else:
            values[name] = bindparam(name, type_=table.c[name].type)
    return values


def _insert(table: Table, struct: type[msgspec.Struct]) -> Insert:
    return insert(table).values(
        email_id=bindparam("email_id", type_=Uuid()), **_values(table, struct.__struct_fields__)
    )


def _upsert(table: Table, struct: type[msgspec.Struct], *, key: Sequence[str]) -> Insert:
    """INSERT, or UPDATE the row with the same `key`: the row keeps its id and `create_timestamp`; data
    columns take the new values, `update_timestamp` the object's (or now() for satellites without
    timestamps in the domain)."""
    statement = pg_insert(table).values(
        email_id=bindparam("email_id", type_=Uuid()), **_values(table, struct.__struct_fields__)
    )
    changes: dict[str, Any] = {
        name: statement.excluded[name]
        for name in struct.__struct_fields__
        if name not in key and name != "create_timestamp"
    }
    changes.setdefault("update_timestamp", func.now())
    return statement.on_conflict_do_update(index_elements=list(key), set_=changes)


_INSERT_EMAIL = insert(emails).values(**_values(emails, Email.__struct_fields__))
_UPDATE_EMAIL: Update = (
    update(emails)
    .where(emails.c.email_id == bindparam("email_id", type_=Uuid()))
    .values(
        **_values(
            emails,
            (n for n in Email.__struct_fields__ if n not in ("email_id", "create_timestamp")),
        )
    )
)
_DELETE_CONTACT = delete(emails).where(emails.c.email_id == bindparam("email_id", type_=Uuid()))

_SATELLITES: Final[dict[str, tuple[Table, type[msgspec.Struct]]]] = {
    "amo": (amo, Amo),
    "fxa": (fxa, Fxa),
    "mofo": (mofo, Mofo),
}
_UPSERT_SATELLITE: Final[dict[str, Insert]] = {
    group: _upsert(table, struct, key=("email_id",))
    for group, (table, struct) in _SATELLITES.items()
}
_DELETE_SATELLITE: Final[dict[str, Delete]] = {
    group: delete(table).where(table.c.email_id == bindparam("email_id", type_=Uuid()))
    for group, (table, _) in _SATELLITES.items()
}

_ITEMS: Final[dict[str, tuple[Table, type[msgspec.Struct]]]] = {
    "newsletters": (newsletters, Newsletter),
    "waitlists": (waitlists, Waitlist),
}
_INSERT_ITEMS: Final[dict[str, Insert]] = {
    kind: _insert(table, struct) for kind, (table, struct) in _ITEMS.items()
}
_UPSERT_ITEMS: Final[dict[str, Insert]] = {
    kind: _upsert(table, struct, key=("email_id", "name"))
    for kind, (table, struct) in _ITEMS.items()
}
_DELETE_ITEMS: Final[dict[str, Delete]] = {
    kind: delete(table).where(
        table.c.email_id == bindparam("email_id", type_=Uuid()),
        table.c.name == any_(bindparam("names", type_=ARRAY(String()))),
    )
    for kind, (table, _) in _ITEMS.items()
}


def _parameters(struct: msgspec.Struct, email_id: uuid.UUID) -> dict[str, Any]:
    parameters = msgspec.structs.asdict(struct)
    parameters["email_id"] = email_id
    return parameters


class PostgresContactRepository:
    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope

    # --- reads -----------------------------------------------------------------------------------------

    async def get(self, email_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        connection = self._scope.connection
        if for_update:
            await self._scope.begin()
            locked = await connection.execute(_LOCK, {"email_id": email_id})
            if locked.first() is None:
                return None
        document = (await connection.execute(_BY_ID, {"email_id": email_id})).scalar()
        return None if document is None else decode_contact(document)

    async def get_many(self, email_ids: Sequence[uuid.UUID]) -> list[Contact]:
        if not email_ids:
            return []
        return await self._contacts(_BY_IDS, {"email_ids": list(email_ids)})

    async def find_by_primary_email(self, primary_email: str) -> list[Contact]:
        return await self.lookup(LookupCriteria(primary_email=primary_email))

    async def lookup(self, criteria: LookupCriteria) -> list[Contact]:
        conditions: list[ColumnElement[bool]] = []
        for name, value in criteria.given().items():
            if name == "email_id":
                try:
                    wanted = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
                except ValueError:
                    return []  # not a UUID: matches no contact (and the criteria are ANDed)
                conditions.append(emails.c.email_id == wanted)
            elif name in _CASE_INSENSITIVE:
                conditions.append(_LOOKUP_COLUMNS[name] == func.lower(str(value)))
            else:
                conditions.append(_LOOKUP_COLUMNS[name] == str(value))
        if not conditions:
            return []  # no identifier: never the whole table
        statement = select_contacts().where(*conditions).order_by(emails.c.email_id)
        return await self._contacts(statement, {})

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
        statement = _UPDATES[(after is not None, mofo_relevant)]
        return await self._contacts(statement, parameters)

    async def find_conflicts(self, contact: Contact) -> list[str]:
        return [name for name in await self._taken_fields(contact) if name != "email_id"]

    async def _contacts(self, statement: Any, parameters: dict[str, Any]) -> list[Contact]:
        documents = (await self._scope.connection.execute(statement, parameters)).scalars()
        return [decode_contact(document) for document in documents]

    async def _taken_fields(self, contact: Contact) -> list[str]:
        """Unique fields of `contact` already held: `email_id` by any row, the others by another
        contact."""
        row = (
            await self._scope.connection.execute(
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

    async def add(self, contact: Contact) -> None:
        try:
            async with self._scope.atomic():
                await self._insert(contact)
        except IntegrityError as error:
            raise await self._violation(error, contact, adding=True) from None

    async def save(self, contact: Contact, *, previous: Contact) -> None:
        if contact.email_id != previous.email_id:
            raise ValueError("save() cannot change a contact's email_id")
        try:
            async with self._scope.atomic():
                await self._update(contact, previous)
        except IntegrityError as error:
            raise await self._violation(error, contact, adding=False) from None

    async def delete(self, email_id: uuid.UUID) -> None:
        await self._scope.begin()
        await self._scope.connection.execute(_DELETE_CONTACT, {"email_id": email_id})

    async def _insert(self, contact: Contact) -> None:
        connection = self._scope.connection
        email_id = contact.email_id
        await connection.execute(_INSERT_EMAIL, msgspec.structs.asdict(contact.email))
        for group in _SATELLITES:
            satellite = getattr(contact, group)
            if satellite is not None:
                await connection.execute(
                    _UPSERT_SATELLITE[group], _parameters(satellite, email_id)
                )
        for kind in _ITEMS:
            items = getattr(contact, kind)
            if items:
                await connection.execute(
                    _INSERT_ITEMS[kind], [_parameters(item, email_id) for item in items]
                )

    async def _update(self, contact: Contact, previous: Contact) -> None:
        connection = self._scope.connection
        email_id = contact.email_id
        if contact.email != previous.email:
            await connection.execute(_UPDATE_EMAIL, msgspec.structs.asdict(contact.email))
        for group in _SATELLITES:
            current, before = getattr(contact, group), getattr(previous, group)
            if current is None and before is not None:
                await connection.execute(_DELETE_SATELLITE[group], {"email_id": email_id})
            elif current is not None and current != before:
                await connection.execute(_UPSERT_SATELLITE[group], _parameters(current, email_id))
        for kind in _ITEMS:
            items: tuple[Newsletter | Waitlist, ...] = getattr(contact, kind)
            before_items = {item.name: item for item in getattr(previous, kind)}
            kept = {item.name for item in items}
            dropped = [name for name in before_items if name not in kept]
            if dropped:
                await connection.execute(
                    _DELETE_ITEMS[kind], {"email_id": email_id, "names": dropped}
                )
            changed = [item for item in items if before_items.get(item.name) != item]
            if changed:
                await connection.execute(
                    _UPSERT_ITEMS[kind], [_parameters(item, email_id) for item in changed]
                )

    async def _violation(
        self, error: IntegrityError, contact: Contact, *, adding: bool
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

