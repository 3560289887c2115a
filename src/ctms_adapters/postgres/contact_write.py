"""The one statement of a contact write (POST, PUT, PATCH), built from a fixed list of steps.

A contact write is one statement: data-modifying CTEs, one per step below, fed by bound column arrays
(`unnest`) with the contact's id on every row. One round trip writes the whole contact whatever it holds,
a unique violation leaves nothing half-written, and the writes of several units concatenate into one
statement (`WriteCoalescer`). A statement holds only the steps with something to do, so PostgreSQL opens,
locks and plans no table the write leaves alone (a newsletter toggle touches `emails`, `newsletters` and
the queue only). Every combination of steps is one SQL text, compiled once (`statement_for`) and
prepared once per connection; `tests/unit/snapshots/` pins the text of a POST, a PUT and a PATCH.

`STEPS` is the statement in order, read top to bottom:

* `add:*` write a new contact (POST, PUT of an unknown id): plain inserts.
* `save:email` is the *guard* of a change (PUT, PATCH): it updates the `emails` row only while the row
  still has the version the caller read (`expected_version`; none after a read under the contact's lock)
  and returns the ids it updated. It is the first CTE (`guarded`), and every other `save:*` step, and the
  queue entry of a change, writes only the rows of the ids it let through (`let_through`): a change of a
  contact that changed since it was read writes nothing at all.
* `save:dropped_*` delete the satellites and items the change removed; `save:<group>` upsert the ones it
  changed.
* `enqueue` / `enqueue:guarded` queue the contact for Acoustic sync (`sync_queue.enqueue_step`), the
  latter only where the guard passed.

Timestamps come from the domain objects (`now()` when they have none). A row that stays keeps its id and
`create_timestamp`; its data columns and `update_timestamp` take the new values (`now()` for fxa/mofo,
whose timestamps the domain does not carry). See docs/adr/0008-explicit-contact-write.md.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

import msgspec
from sqlalchemy import (
    Delete,
    Insert,
    String,
    Table,
    Text,
    Update,
    cast,
    column,
    delete,
    exc,
    func,
    literal_column,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.elements import ColumnElement

from ctms_adapters.postgres.sync_queue import enqueue_parameters, enqueue_step
from ctms_adapters.postgres.tables import amo, emails, fxa, mofo, newsletters, waitlists
from ctms_adapters.postgres.transaction import DriverStatement, unnested_rows
from ctms_core.domain.contact import Amo, Contact, Email, Fxa, Mofo, Newsletter, Waitlist

# The version of a contact's stored state: the transaction id that wrote its `emails` row, which every
# write of a contact rewrites (`_save_parameters`).
VERSION: Final = cast(literal_column("emails.xmin"), Text)

# The CTE name of a statement's guard step, whose `key` column the guarded steps read (`let_through`).
GUARDED_KEYS: Final = "guarded"


def let_through(key: ColumnElement[Any]) -> ColumnElement[bool]:
    """The condition on a guarded step's rows: their `key` is one the statement's guard returned."""
    return key.in_(select(column("key")).select_from(table(GUARDED_KEYS)))


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
# Row groups written from column arrays (`_insert_rows`): a new contact's e-mail row too.
_NEW_EMAIL = "new_email"
_ROW_GROUPS: Final[dict[str, tuple[Table, type[msgspec.Struct]]]] = {
    _NEW_EMAIL: (emails, Email),
    **_CHILDREN,
}
# The parameters of a change are prefixed apart from a new contact's: both kinds can share a statement.
_SAVED = "saved_"
# The `emails` columns a change sets, and the extra column of its rows: the version it expects.
_SAVED_EMAIL_FIELDS: Final = tuple(
    name for name in Email.__struct_fields__ if name != "create_timestamp"
)
_EXPECTED_VERSION = "version"
# The parameter prefixes of queue entries written whatever happens (a new contact), and of those written
# only where the guard passed (a change).
_QUEUE = "queue"
_GUARDED_QUEUE = "guarded_queue"


def _parameter(group: str, field: str) -> str:
    # Prefixed: SQLAlchemy reserves bare column names for the parameters of INSERT/UPDATE values.
    return f"{group}__{field}"


def _timestamp_or_now(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(value, func.now())


def _insert_rows(group: str, *, upsert_key: tuple[str, ...] | None, prefix: str = "") -> Insert:
    """`INSERT INTO <table> SELECT item.* FROM unnest(:<prefix><group>__email_id, ...) AS
    item(email_id, <field>, ...)`, optionally `ON CONFLICT (<upsert_key>) DO UPDATE`; a change's
    (`prefix=_SAVED`) writes only the rows its guard let through."""
    table_, struct = _ROW_GROUPS[group]
    fields = tuple(dict.fromkeys(("email_id", *struct.__struct_fields__)))
    item = unnested_rows(prefix + group, {field: table_.c[field].type for field in fields})
    rows = select(
        *(
            _timestamp_or_now(item.c[field]) if field in _TIMESTAMPS else item.c[field]
            for field in fields
        ),
    )
    if prefix == _SAVED:
        rows = rows.where(let_through(item.c.email_id))
    statement = pg_insert(table_).from_select(list(fields), rows)
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
    table_, _ = _CHILDREN[group]
    keys = ("email_id", "name") if group in _ITEMS else ("email_id",)
    item = unnested_rows(_SAVED + _dropped(group), {key: table_.c[key].type for key in keys})
    return delete(table_).where(
        *(table_.c[key] == item.c[key] for key in keys), let_through(item.c.email_id)
    )


def _guard() -> Update:
    """Update the `emails` rows of changes, each only while the row still has the version expected (none
    is expected after a locked read), returning the ids it updated: the guard of the other steps."""
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
        .where(emails.c.email_id == item.c.email_id, or_(expected.is_(None), expected == VERSION))
        .values(
            {
                name: _timestamp_or_now(item.c[name]) if name in _TIMESTAMPS else item.c[name]
                for name in _SAVED_EMAIL_FIELDS
                if name != "email_id"
            }
        )
        .returning(emails.c.email_id.label("key"))
    )


StepRole = Literal["write", "guard", "guarded"]


class Step(NamedTuple):
    """One data-modifying CTE of a contact write: its name, what it does, and its role: a plain `write`,
    the `guard`, or a `guarded` step writing only the rows the guard let through."""

    name: str
    statement: Insert | Update | Delete
    role: StepRole


# The steps of a contact write, in statement order (the guard goes first whatever its place here).
STEPS: Final[tuple[Step, ...]] = (
    Step("add:new_email", _insert_rows(_NEW_EMAIL, upsert_key=None), "write"),
    Step("add:amo", _insert_rows("amo", upsert_key=None), "write"),
    Step("add:fxa", _insert_rows("fxa", upsert_key=None), "write"),
    Step("add:mofo", _insert_rows("mofo", upsert_key=None), "write"),
    Step("add:newsletters", _insert_rows("newsletters", upsert_key=None), "write"),
    Step("add:waitlists", _insert_rows("waitlists", upsert_key=None), "write"),
    Step("save:email", _guard(), "guard"),
    Step("save:dropped_amo", _delete_dropped("amo"), "guarded"),
    Step("save:dropped_fxa", _delete_dropped("fxa"), "guarded"),
    Step("save:dropped_mofo", _delete_dropped("mofo"), "guarded"),
    Step("save:dropped_newsletters", _delete_dropped("newsletters"), "guarded"),
    Step("save:dropped_waitlists", _delete_dropped("waitlists"), "guarded"),
    Step("save:amo", _insert_rows("amo", upsert_key=("email_id",), prefix=_SAVED), "guarded"),
    Step("save:fxa", _insert_rows("fxa", upsert_key=("email_id",), prefix=_SAVED), "guarded"),
    Step("save:mofo", _insert_rows("mofo", upsert_key=("email_id",), prefix=_SAVED), "guarded"),
    Step(
        "save:newsletters",
        _insert_rows("newsletters", upsert_key=("email_id", "name"), prefix=_SAVED),
        "guarded",
    ),
    Step(
        "save:waitlists",
        _insert_rows("waitlists", upsert_key=("email_id", "name"), prefix=_SAVED),
        "guarded",
    ),
    Step("enqueue", enqueue_step(_QUEUE), "write"),
    Step("enqueue:guarded", enqueue_step(_GUARDED_QUEUE, only=let_through), "guarded"),
)
_BY_NAME: Final = {step.name: step for step in STEPS}


def table_of(step_name: str) -> str:
    return str(_BY_NAME[step_name].statement.table)


def is_guard(step_name: str) -> bool:
    return _BY_NAME[step_name].role == "guard"


def is_guarded(step_name: str) -> bool:
    return _BY_NAME[step_name].role == "guarded"


@functools.cache
def statement_for(step_names: frozenset[str]) -> DriverStatement:
    """One statement running the named steps as CTEs, the guard first (the others read it), then in
    `STEPS` order. It returns the keys the guard let through, if it has one."""
    unknown = step_names - _BY_NAME.keys()
    if unknown:
        raise ValueError(f"unknown contact write steps: {sorted(unknown)}")
    guards = [name for name in step_names if is_guard(name)]
    if len(guards) > 1:
        raise ValueError(f"one guard per statement, not {sorted(guards)}")
    if not guards and any(is_guarded(name) for name in step_names):
        raise ValueError("guarded steps without a guard")
    chosen = [step for step in STEPS if step.name in step_names and step.role != "guard"]
    ctes = [step.statement.cte(f"write_{index}") for index, step in enumerate(chosen)]
    if not guards:
        return DriverStatement(select(literal_column("1")).add_cte(*ctes))
    guard_cte = _BY_NAME[guards[0]].statement.cte(GUARDED_KEYS)
    return DriverStatement(select(guard_cte.c.key).add_cte(guard_cte, *ctes))


class Guard(NamedTuple):
    """What a change expects: that the guard lets `key` through. When it does not (the row changed since
    it was read, or is gone), none of the change's rows was written, and the call that sent it raises
    `refused()`."""

    key: Any
    refused: Callable[[], BaseException]


class ContactWrite(NamedTuple):
    """A pending write of one unit: `steps` with their column `parameters` (one entry per row, so the
    same steps of other units concatenate with them). `explain_failure` turns the integrity error of the
    statement it went out in into the error its caller is owed (a unique violation naming fields).
    `guard`: set when `steps` hold the guard, what it must let through."""

    steps: frozenset[str]
    parameters: Mapping[str, Any]
    explain_failure: Callable[[exc.IntegrityError], Awaitable[BaseException]] | None = None
    guard: Guard | None = None


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


def add_steps(
    contact: Contact, enqueue_at: datetime | None
) -> tuple[frozenset[str], dict[str, Any]]:
    """The `add:*` steps `contact` needs (its e-mail, and each group it has rows for), its queue entry
    when `enqueue_at` is given, and their column arrays."""
    parameters = _rows_parameters(_NEW_EMAIL, contact.email_id, [contact.email])
    steps = {"add:" + _NEW_EMAIL}
    for group in _CHILDREN:
        held = getattr(contact, group)
        rows = (held,) if group in _SATELLITES else held
        if rows and rows[0] is not None:
            steps.add("add:" + group)
            parameters.update(_rows_parameters(group, contact.email_id, rows))
    if enqueue_at is not None:
        steps.add("enqueue")
        parameters.update(enqueue_parameters(_QUEUE, contact.email_id, enqueue_at))
    return frozenset(steps), parameters


def save_steps(
    contact: Contact,
    previous: Contact,
    expected_version: str | None,
    enqueue_at: datetime | None,
) -> tuple[frozenset[str], dict[str, Any]]:
    """Only what differs from `previous` is written: the guard, the `save:*` steps with something to do,
    the queue entry when `enqueue_at` is given, and their column arrays. Nothing at all when nothing
    differs and nothing is queued. The `emails` row is rewritten by every change that writes anything
    (its version is what the guard and the locked read check), which costs nothing in practice: every
    change of a contact moves its update timestamp."""
    email_id = contact.email_id
    parameters: dict[str, Any] = {}
    steps: set[str] = set()

    def drop(group: str, names: list[str] | None = None) -> None:
        """Delete the satellite `group`, or the items of `group` called `names`."""
        steps.add("save:" + _dropped(group))
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
            steps.add("save:" + group)
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
            steps.add("save:" + group)
            parameters.update(_rows_parameters(group, email_id, changed_items, prefix=_SAVED))
    if not steps and contact.email == previous.email and enqueue_at is None:
        return frozenset(), {}
    email = contact.email
    parameters.update(
        {_parameter(_SAVED + "email", name): [getattr(email, name)] for name in _SAVED_EMAIL_FIELDS}
    )
    parameters[_parameter(_SAVED + "email", _EXPECTED_VERSION)] = [expected_version]
    steps.add("save:email")
    if enqueue_at is not None:
        steps.add("enqueue:guarded")
        parameters.update(enqueue_parameters(_GUARDED_QUEUE, email_id, enqueue_at))
    return frozenset(steps), parameters
