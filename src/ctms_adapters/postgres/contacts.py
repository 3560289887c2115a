"""`ContactRepository` on PostgreSQL with SQLAlchemy Core.

Every read is one statement returning one JSON document per contact (see `contact_rows`). Writes touch only
what differs from the stored state the use case read. Statements are built once at import; only lookups,
whose WHERE clause depends on which identifiers were given, are assembled per call.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
from sqlalchemy import (
    DateTime,
    Delete,
    Insert,
    Integer,
    Select,
    String,
    Table,
    Text,
    Update,
    Uuid,
    any_,
    bindparam,
    cast,
    delete,
    exists,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from ctms_adapters.postgres.coalescing import KeyedRead
from ctms_adapters.postgres.contact_rows import (
    CONTACT_DOCUMENT,
    CONTACT_SOURCE,
    decode_contact,
    select_contacts,
)
from ctms_adapters.postgres.tables import amo, emails, fxa, mofo, newsletters, waitlists
from ctms_adapters.postgres.transaction import (
    DeferredWrite,
    DriverStatement,
    Guard,
    TransactionScope,
    let_through,
    register_guard_part,
    register_write_parts,
    unnested_rows,
)
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_adapters.postgres.unique_violations import unique_constraint_of
from ctms_core.domain.contact import Amo, Contact, Email, Fxa, Mofo, Newsletter, Waitlist
from ctms_core.domain.errors import ContactChangedError, UniqueConstraintViolation
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

# Locks the `emails` row (the contact's lock) and reads the contact in one statement. The document is
# built with the statement's snapshot, taken before any wait for the lock: if another transaction
# changed the contact meanwhile, the lock returns the row's new version but the children as they were.
# Every write of a contact rewrites its `emails` row (`_save_parameters`), so the row's version (`xmin`)
# tells: when the locked version is not the one the snapshot saw, the children are read again by a
# second statement, whose fresh READ COMMITTED snapshot includes what the previous lock holder committed.
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


def _lookup_statement(names: Iterable[str]) -> Select[str, str]:
    """`(document, version)` of the contacts matching every identifier of `names`, ordered by id."""
    return (
        select(CONTACT_DOCUMENT, _VERSION)
        .select_from(CONTACT_SOURCE)
        .where(*(_lookup_condition(name) for name in names))
        .order_by(emails.c.email_id)
    )


# The version of a contact's stored state: the transaction id that wrote its `emails` row, which every
# write of a contact rewrites (`_save_parameters`). A save of a contact read without a lock applies only
# while the row still has the version read (`_GUARD`).
_VERSION = cast(literal_column("emails.xmin"), Text)


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
        select(wanted.c.key, CONTACT_DOCUMENT, _VERSION)
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


# --- writes --------------------------------------------------------------------------------------------
#
# `add` and `save` are one statement each: data-modifying CTEs, one per table, fed by bound column arrays
# (`unnest`) with the contact's id on every row, so one round trip writes the whole contact whatever it
# holds, a unique violation leaves nothing half-written, and the writes of several contacts concatenate
# into one statement (`DeferredWrite.mergeable`). A statement holds only the parts with something to do.
#
# A save is guarded (`Guard`): its `emails` update applies only while the row still has the version the
# unit read (any version after a locked read), and its other parts write only the rows of contacts whose
# update applied. A save of a contact that changed since it was read writes nothing.
#
# Timestamps come from the domain objects (`now()` when they have none). A row that stays keeps its id and
# `create_timestamp`; its data columns and `update_timestamp` take the new values (`now()` for fxa/mofo,
# whose timestamps the domain does not carry).

_TIMESTAMPS: Final = frozenset({"create_timestamp", "update_timestamp"})

_SATELLITES: Final[dict[str, tuple[Table, type[msgspec.Struct]]]] = {
    "amo": (amo, Amo),
    "fxa": (fxa, Fxa),
    "mofo": (mofo, Mofo),
}
_ITEMS: Final[dict[str, tuple[Table, type[msgspec.Struct]]]] = {
    "newsletters": (newsletters, Newsletter),
    "waitlists": (waitlists, Waitlist),
}
_CHILDREN: Final = {**_SATELLITES, **_ITEMS}
# Tables written from column arrays (`_insert_rows`): a new contact's e-mail row too.
_NEW_EMAIL = "new_email"
_ROW_GROUPS: Final[dict[str, tuple[Table, type[msgspec.Struct]]]] = {
    _NEW_EMAIL: (emails, Email),
    **_CHILDREN,
}
# The parameters of a save are prefixed apart from an add's: both kinds can share a statement.
_SAVED = "saved_"
# The `emails` columns a save sets, and the extra column of its rows: the version it expects.
_SAVED_EMAIL_FIELDS: Final = tuple(
    name for name in Email.__struct_fields__ if name != "create_timestamp"
)
_EXPECTED_VERSION = "version"


def _parameter(group: str, field: str) -> str:
    # Prefixed: SQLAlchemy reserves bare column names for the parameters of INSERT/UPDATE values.
    return f"{group}__{field}"


def _timestamp_or_now(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(value, func.now())


def _insert_rows(group: str, *, upsert_key: tuple[str, ...] | None, prefix: str = "") -> Insert:
    """`INSERT INTO <table> SELECT item.* FROM unnest(:<prefix><group>__email_id, ...) AS
    item(email_id, <field>, ...)`, optionally `ON CONFLICT (<upsert_key>) DO UPDATE`; a save's
    (`prefix=_SAVED`) writes only the rows its guard let through."""
    table, struct = _ROW_GROUPS[group]
    fields = tuple(dict.fromkeys(("email_id", *struct.__struct_fields__)))
    item = unnested_rows(prefix + group, {field: table.c[field].type for field in fields})
    rows = select(
        *(
            _timestamp_or_now(item.c[field]) if field in _TIMESTAMPS else item.c[field]
            for field in fields
        ),
    )
    if prefix == _SAVED:
        rows = rows.where(let_through(item.c.email_id))
    statement = pg_insert(table).from_select(list(fields), rows)
    if upsert_key is None:
        return statement
    changes: dict[str, Any] = {
        field: statement.excluded[field]
        for field in fields
        if field not in upsert_key and field != "create_timestamp"
    }
    changes.setdefault("update_timestamp", func.now())
    return statement.on_conflict_do_update(index_elements=list(upsert_key), set_=changes)


def _dropped(group: str) -> str:
    return f"dropped_{group}"


def _delete_dropped(group: str) -> Delete:
    """Delete the rows of `group` listed by `(email_id, name)` (satellites: by `email_id`), of the
    contacts the guard let through."""
    table, _ = _CHILDREN[group]
    keys = ("email_id", "name") if group in _ITEMS else ("email_id",)
    item = unnested_rows(_SAVED + _dropped(group), {key: table.c[key].type for key in keys})
    return delete(table).where(
        *(table.c[key] == item.c[key] for key in keys), let_through(item.c.email_id)
    )


def _guard() -> Update:
    """Update the `emails` rows of saves, each only while the row still has the version the unit read
    (none is expected after a locked read), returning the ids it updated: the guard of the save's other
    parts."""
    item = unnested_rows(
        _SAVED + "email",
        {
            **{name: emails.c[name].type for name in _SAVED_EMAIL_FIELDS},
            _EXPECTED_VERSION: String(),
        },
    )
    expected = item.c[_EXPECTED_VERSION]
    return (
        update(emails)
        .where(emails.c.email_id == item.c.email_id, or_(expected.is_(None), expected == _VERSION))
        .values(
            {
                name: _timestamp_or_now(item.c[name]) if name in _TIMESTAMPS else item.c[name]
                for name in _SAVED_EMAIL_FIELDS
                if name != "email_id"
            }
        )
        .returning(emails.c.email_id.label("key"))
    )


# The parts of a write, by name: a statement holds only the parts with something to do, so PostgreSQL
# opens, locks and plans no table the write leaves alone (a newsletter toggle touches `emails` and
# `newsletters` only). The unit of work sends them with the other writes it holds (`DeferredWrite`).
_ADD_PARTS: Final[dict[str, Insert | Update | Delete]] = {
    group: _insert_rows(group, upsert_key=None) for group in _ROW_GROUPS
}
_SAVE_PARTS: Final[dict[str, Insert | Update | Delete]] = {
    **{_dropped(group): _delete_dropped(group) for group in _CHILDREN},
    **{
        group: _insert_rows(group, upsert_key=("email_id",), prefix=_SAVED) for group in _SATELLITES
    },
    **{
        group: _insert_rows(group, upsert_key=("email_id", "name"), prefix=_SAVED)
        for group in _ITEMS
    },
}
_SAVE_GUARD = "save:email"

register_write_parts({f"add:{name}": part for name, part in _ADD_PARTS.items()})
register_guard_part(_SAVE_GUARD, _guard())
register_write_parts({f"save:{name}": part for name, part in _SAVE_PARTS.items()}, guarded=True)


_DELETE_CONTACT = delete(emails).where(emails.c.email_id == bindparam("contact_id", type_=Uuid()))


def _rows_parameters(
    group: str, email_id: uuid.UUID, items: Sequence[msgspec.Struct], *, prefix: str = ""
) -> dict[str, list[Any]]:
    """The column arrays of `items` (rows of contact `email_id`) for `_insert_rows(group)`."""
    _, struct = _ROW_GROUPS[group]
    parameters = {
        _parameter(prefix + group, field): [getattr(item, field) for item in items]
        for field in struct.__struct_fields__
    }
    parameters[_parameter(prefix + group, "email_id")] = [email_id] * len(items)
    return parameters


def _add_parameters(contact: Contact) -> tuple[frozenset[str], dict[str, Any]]:
    """The parts of `_ADD_PARTS` that `contact` needs (its e-mail, and each group it has rows for) and
    their column arrays."""
    parameters = _rows_parameters(_NEW_EMAIL, contact.email_id, [contact.email])
    parts = {_NEW_EMAIL}
    for group in _CHILDREN:
        held = getattr(contact, group)
        rows = (held,) if group in _SATELLITES else held
        if rows and rows[0] is not None:
            parts.add(group)
            parameters.update(_rows_parameters(group, contact.email_id, rows))
    return frozenset(f"add:{part}" for part in parts), parameters


def _save_parameters(
    contact: Contact, previous: Contact, expected_version: str | None
) -> tuple[frozenset[str], dict[str, Any]]:
    """Only what differs from `previous` is written: the parts of `_SAVE_PARTS` with something to do,
    the guard, and their column arrays. The `emails` row is rewritten by every save that writes
    anything (its version is what `_LOCK_AND_READ` and the guard check), which costs nothing in
    practice: every change of a contact moves its update timestamp."""
    email_id = contact.email_id
    parameters: dict[str, Any] = {}
    parts: set[str] = set()

    def drop(group: str, names: list[str] | None = None) -> None:
        """Delete the satellite `group`, or the items of `group` called `names`."""
        parts.add(_dropped(group))
        dropped = _SAVED + _dropped(group)
        parameters[_parameter(dropped, "email_id")] = [email_id] * (
            1 if names is None else len(names)
        )
        if names is not None:
            parameters[_parameter(dropped, "name")] = names

    for group in _SATELLITES:
        current, before = getattr(contact, group), getattr(previous, group)
        if current is None and before is not None:
            drop(group)
        elif current is not None and current != before:
            parts.add(group)
            parameters.update(_rows_parameters(group, email_id, [current], prefix=_SAVED))
    for group in _ITEMS:
        items: tuple[Newsletter | Waitlist, ...] = getattr(contact, group)
        before_items = {item.name: item for item in getattr(previous, group)}
        kept = {item.name for item in items}
        dropped = [name for name in before_items if name not in kept]
        if dropped:
            drop(group, dropped)
        changed_items = [item for item in items if before_items.get(item.name) != item]
        if changed_items:
            parts.add(group)
            parameters.update(_rows_parameters(group, email_id, changed_items, prefix=_SAVED))
    if not parts and contact.email == previous.email:
        return frozenset(), {}
    email = contact.email
    parameters.update(
        {_parameter(_SAVED + "email", name): [getattr(email, name)] for name in _SAVED_EMAIL_FIELDS}
    )
    parameters[_parameter(_SAVED + "email", _EXPECTED_VERSION)] = [expected_version]
    return frozenset({_SAVE_GUARD, *(f"save:{part}" for part in parts)}), parameters


@reports_unavailability
class PostgresContactRepository:
    """Contacts read without a lock (`get`, `lookup`) are saved optimistically: the save expects the
    version the unit read, and raises `ContactChangedError` (when its write is sent) if the contact
    changed since. `get_many` and `updates_page` serve reads that are never saved back."""

    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope
        # The version of each contact this unit read without a lock, which its save expects.
        self._versions_read: dict[uuid.UUID, str] = {}

    # --- reads -----------------------------------------------------------------------------------------

    async def get(self, email_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        if for_update:
            self._versions_read.pop(email_id, None)  # locked until commit: it cannot change
            await self._scope.lock()
            rows = await self._scope.execute(_LOCK_AND_READ, {"email_id": email_id})
            if not rows:
                return None
            ((unchanged_since_snapshot, document),) = rows
            if unchanged_since_snapshot:
                return decode_contact(document)
            (row,) = await self._scope.keyed_rows(_LOOKUP_BY_ONE["email_id"], email_id)
            return decode_contact(row[1])
        rows = await self._scope.keyed_rows(_LOOKUP_BY_ONE["email_id"], email_id)
        return self._decoded(row[1:] for row in rows)[0] if rows else None

    def _decoded(self, rows: Iterable[Sequence[Any]]) -> list[Contact]:
        """The contacts of `(document, version)` rows read without a lock, their versions noted."""
        contacts = []
        for document, version in rows:
            contact = decode_contact(document)
            self._versions_read[contact.email_id] = version
            contacts.append(contact)
        return contacts

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
            rows = await self._scope.keyed_rows(_LOOKUP_BY_ONE[name], value)
            return self._decoded(row[1:] for row in rows)
        result = await self._scope.run(_lookup_statement(parameters), parameters)
        return self._decoded(result.all())

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

    async def add(self, contact: Contact) -> None:
        """Deferred (`TransactionScope.defer`): a clash on a unique identifier surfaces from the call
        that sends it, usually the unit's `commit()`."""
        parts, parameters = _add_parameters(contact)
        await self._scope.defer(
            DeferredWrite(
                parts,
                parameters,
                functools.partial(self._violation, contact, adding=True),
                mergeable=True,
            )
        )

    async def save(self, contact: Contact, *, previous: Contact) -> None:
        """Deferred like `add`; only what differs from `previous` is written. Guarded: when this unit
        read the contact without a lock, the write applies only if it is still the version read, else
        the call that sends it raises `ContactChangedError` and nothing of it is written."""
        if contact.email_id != previous.email_id:
            raise ValueError("save() cannot change a contact's email_id")
        # A second save of the unit goes out after the first, inside the transaction holding its lock.
        expected_version = self._versions_read.pop(contact.email_id, None)
        parts, parameters = _save_parameters(contact, previous, expected_version)
        if not parts:
            return  # nothing differs
        await self._scope.defer(
            DeferredWrite(
                parts,
                parameters,
                functools.partial(self._violation, contact, adding=False),
                mergeable=True,
                guard=Guard(contact.email_id, ContactChangedError),
            )
        )

    async def delete(self, email_id: uuid.UUID) -> None:
        self._versions_read.pop(email_id, None)
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
