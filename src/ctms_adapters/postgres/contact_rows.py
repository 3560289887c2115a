"""Reading a whole contact in one round trip: the SQL that renders it as one JSON document, and the
decoding of that document into the `Contact` aggregate.

PostgreSQL builds, per contact, `{"email": {...}, "amo": {...}|null, "fxa": ..., "mofo": ...,
"newsletters": [...], "waitlists": [...]}` from `emails LEFT JOIN amo/fxa/mofo` plus two correlated
`json_agg` subqueries, with keys named after the fields of the domain structs. msgspec decodes that text
straight into `Contact` (timestamps, dates and UUIDs included) in one C-level pass: no per-column Python
work on the hot path. Items are aggregated `ORDER BY name COLLATE "C"`, byte order of UTF-8, which is
code-point order whatever the database's collation (docs/contract.md §5.8).

Stored rows that do not fit the domain types (a NULL boolean, a NULL format, a `fields` that is not an
object, ...) fail the typed decode; they are then decoded leniently, value by value, so a read never fails
on odd data (docs/contract.md §4.1).
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Select, Table, Text, case, cast, func, literal_column, null, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement

from ctms_adapters.postgres.tables import amo, emails, fxa, mofo, newsletters, waitlists
from ctms_core.domain.contact import Amo, Contact, Email, Fxa, Mofo, Newsletter, Waitlist


def _key(name: str) -> ColumnElement[Any]:
    # Keys are field names of our own structs, rendered as SQL literals rather than bound parameters so
    # the statement text alone describes the document (and its prepared form is reused).
    if not name.isidentifier():
        raise ValueError(f"unexpected field name {name!r}")
    return literal_column(f"'{name}'")


def _json_object(table: Table, struct: type[msgspec.Struct]) -> ColumnElement[Any]:
    """`json_build_object('<field>', <column>, ...)` for every field of `struct`, columns of the same
    name (a struct field without a column fails here, at import, not at the first read)."""
    arguments: list[ColumnElement[Any]] = []
    for name in struct.__struct_fields__:
        arguments += [_key(name), table.c[name]]
    return func.json_build_object(*arguments)


def _satellite(table: Table, struct: type[msgspec.Struct]) -> ColumnElement[Any]:
    """The joined 1:0..1 row as an object, or JSON null when the contact has none."""
    return case((table.c.id.is_(None), null()), else_=_json_object(table, struct))


def _items(table: Table, struct: type[msgspec.Struct]) -> ColumnElement[Any]:
    """The contact's rows of `table` as a JSON array sorted by name in code-point order."""
    aggregated = func.json_agg(
        aggregate_order_by(_json_object(table, struct), table.c.name.collate("C"))
    )
    return (
        select(func.coalesce(aggregated, literal_column("'[]'::json")))
        .where(table.c.email_id == emails.c.email_id)
        .scalar_subquery()
    )


CONTACT_DOCUMENT: ColumnElement[str] = cast(
    func.json_build_object(
        _key("email"),
        _json_object(emails, Email),
        _key("amo"),
        _satellite(amo, Amo),
        _key("fxa"),
        _satellite(fxa, Fxa),
        _key("mofo"),
        _satellite(mofo, Mofo),
        _key("newsletters"),
        _items(newsletters, Newsletter),
        _key("waitlists"),
        _items(waitlists, Waitlist),
    ),
    Text,
).label("contact")

CONTACT_SOURCE = (
    emails.outerjoin(amo, amo.c.email_id == emails.c.email_id)
    .outerjoin(fxa, fxa.c.email_id == emails.c.email_id)
    .outerjoin(mofo, mofo.c.email_id == emails.c.email_id)
)


def select_contacts() -> Select[Any]:
    """`SELECT <contact document> FROM emails LEFT JOIN amo, fxa, mofo`; callers add WHERE/ORDER BY and
    may filter on the joined tables."""
    return select(CONTACT_DOCUMENT).select_from(CONTACT_SOURCE)


# --- decoding --------------------------------------------------------------------------------------------

_contact_decoder = msgspec.json.Decoder(Contact)


def decode_contact(document: str) -> Contact:
    try:
        return _contact_decoder.decode(document)
    except msgspec.ValidationError:
        return _lenient_contact(msgspec.json.decode(document))


def _lenient_contact(raw: dict[str, Any]) -> Contact:
    def satellite(struct: type[Any], value: Any) -> Any:
        return None if value is None else _lenient(struct, value)

    return Contact(
        email=_lenient(Email, raw["email"]),
        amo=satellite(Amo, raw.get("amo")),
        fxa=satellite(Fxa, raw.get("fxa")),
        mofo=satellite(Mofo, raw.get("mofo")),
        newsletters=tuple(_lenient(Newsletter, item) for item in raw.get("newsletters") or ()),
        waitlists=tuple(_lenient(Waitlist, item) for item in raw.get("waitlists") or ()),
    )


def _lenient(struct: type[Any], raw: Any) -> Any:
    """`struct` from a JSON object, each value converted on its own; one that does not fit its type gets
    False (booleans: a NULL flag is not a consent) or the field's default, so nothing is lost but it."""
    values = raw if isinstance(raw, dict) else {}
    arguments: dict[str, Any] = {}
    for field in msgspec.structs.fields(struct):
        value = values.get(field.encode_name)
        try:
            arguments[field.name] = msgspec.convert(value, field.type, strict=False)
        except msgspec.ValidationError:
            arguments[field.name] = _fallback(field, value)
    return struct(**arguments)


def _fallback(field: msgspec.structs.FieldInfo, value: Any) -> Any:
    # A declared field's type is `Annotated[bool, rule]`, whose origin is `bool`.
    if getattr(field.type, "__origin__", field.type) is bool:
        return False
    if field.default is not msgspec.NODEFAULT:
        return field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return value  # a required identifier (never NULL in a stored row): keep what is there
