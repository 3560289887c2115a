"""XML API documents and responses (docs/contract.md §9.4), built and read with the stdlib ElementTree.

Documents are ElementTree output: no XML declaration, no whitespace between elements, non-ASCII characters
as numeric character references, empty elements self-closing (`<COLUMN name="x" />`). Values are set as
element text or attributes, never concatenated, so ElementTree escapes them; characters XML 1.0 cannot
carry at all (control characters, lone surrogates) are dropped instead of producing a document Acoustic
would reject.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Final

import msgspec

__all__ = [
    "NotXmlError",
    "XmlResponse",
    "add_recipient_document",
    "delete_relational_table_data_document",
    "insert_update_relational_table_document",
    "parse_response",
    "remove_recipient_document",
]

# docs/contract.md §9.4: recipients created by CTMS are "created from" 3 (added manually / by API).
CREATED_FROM: Final = "3"
_XML_INCOMPATIBLE = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_UNSAFE_MARKUP = (b"<!DOCTYPE", b"<!ENTITY")


def _clean(value: str) -> str:
    return _XML_INCOMPATIBLE.sub("", value)


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _clean(value)
    return element


def _envelope(operation: str) -> tuple[ET.Element, ET.Element]:
    envelope = ET.Element("Envelope")
    body = ET.SubElement(envelope, "Body")
    return envelope, ET.SubElement(body, operation)


def _serialise(envelope: ET.Element) -> bytes:
    # us-ascii: no XML declaration, and every non-ASCII character becomes a character reference.
    document: bytes = ET.tostring(envelope, encoding="us-ascii")
    return document


def _name_value(parent: ET.Element, tag: str, name: str, value: str) -> None:
    element = ET.SubElement(parent, tag)
    _text(element, "NAME", name)
    if value != "":
        _text(element, "VALUE", value)


def add_recipient_document(
    list_id: str, sync_fields: Mapping[str, str], columns: Mapping[str, str]
) -> bytes:
    """`AddRecipient` with update-if-found: a column with an empty value has no `VALUE` child."""
    envelope, operation = _envelope("AddRecipient")
    _text(operation, "LIST_ID", list_id)
    _text(operation, "CREATED_FROM", CREATED_FROM)
    _text(operation, "UPDATE_IF_FOUND", "TRUE")
    sync = ET.SubElement(operation, "SYNC_FIELDS")
    for name, value in sync_fields.items():
        _name_value(sync, "SYNC_FIELD", name, value)
    for name, value in columns.items():
        _name_value(operation, "COLUMN", name, value)
    return _serialise(envelope)


def insert_update_relational_table_document(
    table_id: str, rows: Iterable[Mapping[str, str]]
) -> bytes:
    """`InsertUpdateRelationalTable`: `<ROW><COLUMN name="…">value</COLUMN>…</ROW>` per row."""
    envelope, operation = _envelope("InsertUpdateRelationalTable")
    _text(operation, "TABLE_ID", table_id)
    rows_element = ET.SubElement(operation, "ROWS")
    for row in rows:
        row_element = ET.SubElement(rows_element, "ROW")
        for name, value in row.items():
            column = ET.SubElement(row_element, "COLUMN", {"name": _clean(name)})
            if value != "":
                column.text = _clean(value)
    return _serialise(envelope)


def remove_recipient_document(list_id: str, email: str, key_columns: Mapping[str, str]) -> bytes:
    """`RemoveRecipient`: `EMAIL` for e-mail keyed databases, `COLUMN`s for other unique keys."""
    envelope, operation = _envelope("RemoveRecipient")
    _text(operation, "LIST_ID", list_id)
    _text(operation, "EMAIL", email)
    for name, value in key_columns.items():
        _name_value(operation, "COLUMN", name, value)
    return _serialise(envelope)


def delete_relational_table_data_document(
    table_id: str, key_rows: Iterable[Mapping[str, str]]
) -> bytes:
    """`DeleteRelationalTableData`: `<ROW><KEY_COLUMN name="…">value</KEY_COLUMN>…</ROW>` per row."""
    envelope, operation = _envelope("DeleteRelationalTableData")
    _text(operation, "TABLE_ID", table_id)
    rows_element = ET.SubElement(operation, "ROWS")
    for row in key_rows:
        row_element = ET.SubElement(rows_element, "ROW")
        for name, value in row.items():
            key = ET.SubElement(row_element, "KEY_COLUMN", {"name": _clean(name)})
            key.text = _clean(value)
    return _serialise(envelope)


class XmlResponse(msgspec.Struct, frozen=True, kw_only=True):
    """What an XML API answer says. `fault_string` set: a Fault; `failures` non-empty: row failures;
    `success` is the `SUCCESS` text lower-cased (None when absent)."""

    fault_string: str | None = None
    error_id: str | None = None
    failures: tuple[str, ...] = ()
    success: str | None = None

    @property
    def ok(self) -> bool:
        return self.fault_string is None and not self.failures and self.success != "false"


class NotXmlError(ValueError):
    """The body is not a well-formed XML document we are willing to parse."""


def parse_response(body: bytes) -> XmlResponse:
    """Read an XML API response (docs/contract.md §9.4): Fault first, then FAILURES, then the SUCCESS flag.

    Raises `NotXmlError` for a body that is not XML (an HTML error page, an empty body), that declares
    a DOCTYPE/entities (never sent by Acoustic; refused rather than expanded), or that is not an
    `Envelope` (a well-formed page from a proxy is no answer: taking it as success would lose the contact).
    """
    if any(marker in body for marker in _UNSAFE_MARKUP):
        raise NotXmlError("response declares a DOCTYPE or entities")
    try:
        # Acoustic is a configured, authenticated HTTPS endpoint and DOCTYPEs are refused above.
        root = ET.fromstring(body)  # noqa: S314
    except ET.ParseError as error:
        raise NotXmlError(str(error)) from None
    if root.tag != "Envelope":
        raise NotXmlError(f"<{root.tag}> is not an XML API envelope")

    fault_string = root.find(".//Fault/FaultString")
    if fault_string is not None:
        error_id = root.find(".//Fault/detail/error/errorid")
        return XmlResponse(
            fault_string=(fault_string.text or "").strip() or "Fault without FaultString",
            error_id=(error_id.text or "").strip() or None if error_id is not None else None,
        )
    failures = root.findall(".//FAILURES/FAILURE")
    success = root.find(".//SUCCESS")
    return XmlResponse(
        failures=tuple(ET.tostring(failure, encoding="unicode") for failure in failures),
        success=(success.text or "").strip().lower() if success is not None else None,
    )
