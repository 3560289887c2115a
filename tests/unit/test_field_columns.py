"""Each contact field's size is declared once, with its rule: every sized text column of the contact tables
holds whatever its field's rule accepts (docs/contract.md §1, §5.2), so an oversized value is a 422 and never
a database error."""

from __future__ import annotations

import msgspec
import pytest
from sqlalchemy import String, Table, Text

from ctms_adapters.postgres import tables
from ctms_core.domain.contact import Amo, Email, Fxa, Mofo, Newsletter, Waitlist
from ctms_core.domain.fields import input_fields, rule_of

CONTACT_TABLES: list[tuple[Table, type[msgspec.Struct]]] = [
    (tables.emails, Email),
    (tables.amo, Amo),
    (tables.fxa, Fxa),
    (tables.mofo, Mofo),
    (tables.newsletters, Newsletter),
    (tables.waitlists, Waitlist),
]


@pytest.mark.parametrize(
    ("table", "struct"), CONTACT_TABLES, ids=lambda value: getattr(value, "name", "")
)
def test_every_sized_column_holds_what_its_field_s_rule_accepts(
    table: Table, struct: type[msgspec.Struct]
) -> None:
    rules = {field.name: field.rule for field in input_fields(struct)}
    sized = [
        column for column in table.columns if isinstance(column.type, String) and column.type.length
    ]
    assert sized
    for column in sized:
        assert column.name in rules, f"{table.name}.{column.name} has no declared rule"
        rule = rules[column.name]
        assert rule is not None and rule.max_length is not None, (
            f"{table.name}.{column.name}: unbounded rule"
        )
        assert rule.max_length <= column.type.length, (
            f"{table.name}.{column.name}: the rule accepts {rule.max_length} characters, "
            f"the column holds {column.type.length}"
        )


@pytest.mark.parametrize(
    ("table", "struct"), CONTACT_TABLES, ids=lambda value: getattr(value, "name", "")
)
def test_every_declared_field_has_a_column_that_can_hold_it(
    table: Table, struct: type[msgspec.Struct]
) -> None:
    for field in input_fields(struct):
        assert field.name in table.columns, f"{struct.__name__}.{field.name} has no column"
        column_type = table.columns[field.name].type
        if (
            isinstance(column_type, String)
            and not isinstance(column_type, Text)
            and column_type.length
        ):
            assert field.rule is not None and field.rule.max_length is not None


def test_the_rule_is_read_from_the_declaration() -> None:
    [profile_url] = [info for info in msgspec.structs.fields(Amo) if info.name == "profile_url"]
    rule = rule_of(profile_url.type)
    assert rule is not None and rule.max_length == 40
