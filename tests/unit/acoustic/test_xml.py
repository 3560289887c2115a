"""XML API documents and response reading (docs/contract.md §9.4)."""

from __future__ import annotations

import pytest

from ctms_adapters.acoustic.xml import (
    NotXmlError,
    add_recipient_document,
    add_recipient_document_with_elementtree,
    delete_relational_table_data_document,
    insert_update_relational_table_document,
    parse_response,
    remove_recipient_document,
)

EMAIL_ID = "67e52c77-950f-4f28-accb-bb3ea1a2c51a"


def test_add_recipient_is_the_reference_document_byte_for_byte() -> None:
    """Element order of docs/contract.md §9.4; an empty value has no VALUE child; no declaration, no whitespace."""
    document = add_recipient_document(
        "1234",
        {"email_id": EMAIL_ID},
        {
            "email": "mozilla-fan@example.com",
            "double_opt_in": "1",
            "unsubscribe_reason": "",
            "sub_firefox_news": "0",
        },
    )

    assert document == (
        b"<Envelope><Body><AddRecipient><LIST_ID>1234</LIST_ID><CREATED_FROM>3</CREATED_FROM>"
        b"<UPDATE_IF_FOUND>TRUE</UPDATE_IF_FOUND><SYNC_FIELDS><SYNC_FIELD><NAME>email_id</NAME>"
        b"<VALUE>67e52c77-950f-4f28-accb-bb3ea1a2c51a</VALUE></SYNC_FIELD></SYNC_FIELDS>"
        b"<COLUMN><NAME>email</NAME><VALUE>mozilla-fan@example.com</VALUE></COLUMN>"
        b"<COLUMN><NAME>double_opt_in</NAME><VALUE>1</VALUE></COLUMN>"
        b"<COLUMN><NAME>unsubscribe_reason</NAME></COLUMN>"
        b"<COLUMN><NAME>sub_firefox_news</NAME><VALUE>0</VALUE></COLUMN>"
        b"</AddRecipient></Body></Envelope>"
    )


def test_insert_update_relational_table_uses_name_attributes_and_self_closes_empty_columns() -> (
    None
):
    """`<COLUMN name="x" />` for an empty value; one ROW per row in order."""
    document = insert_update_relational_table_document(
        "9",
        [
            {"email_id": EMAIL_ID, "newsletter_name": "common-voice", "newsletter_lang": ""},
            {"email_id": EMAIL_ID, "newsletter_name": "hubs", "newsletter_lang": "fr"},
        ],
    )

    assert document == (
        b"<Envelope><Body><InsertUpdateRelationalTable><TABLE_ID>9</TABLE_ID><ROWS>"
        b'<ROW><COLUMN name="email_id">67e52c77-950f-4f28-accb-bb3ea1a2c51a</COLUMN>'
        b'<COLUMN name="newsletter_name">common-voice</COLUMN><COLUMN name="newsletter_lang" /></ROW>'
        b'<ROW><COLUMN name="email_id">67e52c77-950f-4f28-accb-bb3ea1a2c51a</COLUMN>'
        b'<COLUMN name="newsletter_name">hubs</COLUMN><COLUMN name="newsletter_lang">fr</COLUMN></ROW>'
        b"</ROWS></InsertUpdateRelationalTable></Body></Envelope>"
    )


def test_values_are_escaped_non_ascii_becomes_character_references_and_control_characters_go() -> (
    None
):
    """Markup in values cannot inject elements; `é` is `&#233;`; XML-illegal characters are dropped."""
    document = add_recipient_document(
        "1", {"email_id": "x"}, {"first_name": "Zoé</VALUE><x>&\x00\x1b", "last_name": '"q"'}
    )

    assert b"<VALUE>Zo&#233;&lt;/VALUE&gt;&lt;x&gt;&amp;</VALUE>" in document
    assert b'<VALUE>"q"</VALUE>' in document
    rows = insert_update_relational_table_document("9", [{"a": 'x" y="z'}])
    assert b'<COLUMN name="a">x" y="z</COLUMN>' in rows


def test_remove_recipient_names_the_list_the_address_and_the_sync_key() -> None:
    """RemoveRecipient: LIST_ID, EMAIL, then the key COLUMN (for databases keyed on email_id)."""
    document = remove_recipient_document("1234", "fan@example.com", {"email_id": EMAIL_ID})

    assert document == (
        b"<Envelope><Body><RemoveRecipient><LIST_ID>1234</LIST_ID><EMAIL>fan@example.com</EMAIL>"
        b"<COLUMN><NAME>email_id</NAME><VALUE>67e52c77-950f-4f28-accb-bb3ea1a2c51a</VALUE></COLUMN>"
        b"</RemoveRecipient></Body></Envelope>"
    )


def test_delete_relational_table_data_lists_key_columns_per_row() -> None:
    """DeleteRelationalTableData: `<KEY_COLUMN name="…">` per key of each row."""
    document = delete_relational_table_data_document(
        "9", [{"email_id": EMAIL_ID, "newsletter_name": "hubs"}]
    )

    assert document == (
        b"<Envelope><Body><DeleteRelationalTableData><TABLE_ID>9</TABLE_ID><ROWS><ROW>"
        b'<KEY_COLUMN name="email_id">67e52c77-950f-4f28-accb-bb3ea1a2c51a</KEY_COLUMN>'
        b'<KEY_COLUMN name="newsletter_name">hubs</KEY_COLUMN>'
        b"</ROW></ROWS></DeleteRelationalTableData></Body></Envelope>"
    )


def test_a_success_envelope_is_ok() -> None:
    """docs/contract.md §9.4's success example."""
    response = parse_response(
        b"<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><RecipientId>123</RecipientId></RESULT>"
        b"</Body></Envelope>"
    )

    assert response.ok
    assert response.success == "true"


def test_a_fault_gives_its_fault_string_and_error_id() -> None:
    """`.//Fault/FaultString` wins; the errorid comes from `detail/error/errorid`."""
    response = parse_response(
        b"<Envelope><Body><RESULT><SUCCESS>false</SUCCESS></RESULT><Fault><Request/><FaultCode/>"
        b"<FaultString><![CDATA[Recipient is not a member of the list.]]></FaultString>"
        b"<detail><error><errorid>128</errorid><module/></error></detail></Fault></Body></Envelope>"
    )

    assert not response.ok
    assert (response.fault_string, response.error_id) == (
        "Recipient is not a member of the list.",
        "128",
    )


def test_relational_failures_are_reported_serialised() -> None:
    """FAILURES/FAILURE under a SUCCESS TRUE result is still a failure (docs/contract.md §9.4)."""
    response = parse_response(
        b"<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><FAILURES>"
        b'<FAILURE failure_type="permanent" description="Field not found"/></FAILURES></RESULT>'
        b"</Body></Envelope>"
    )

    assert not response.ok
    assert response.failures == (
        '<FAILURE failure_type="permanent" description="Field not found" />',
    )


def test_success_false_without_a_fault_is_not_ok() -> None:
    """A stricter reading than v3.3, which did not look at SUCCESS."""
    assert not parse_response(
        b"<Envelope><Body><RESULT><SUCCESS>false</SUCCESS></RESULT></Body></Envelope>"
    ).ok


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>500 Internal Server Error</h1><p>oops",
        b"",
        b"Service Unavailable",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Envelope>&a;</Envelope>',
        b"<html><body><h1>Please wait</h1><p>The service is busy.</p></body></html>",
        b"<RESULT><SUCCESS>TRUE</SUCCESS></RESULT>",
    ],
)
def test_bodies_that_are_not_plain_xml_are_refused(body: bytes) -> None:
    """HTML error pages (well-formed ones too: anything but an `Envelope`), empty bodies and entity
    declarations raise `NotXmlError`."""
    with pytest.raises(NotXmlError):
        parse_response(body)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "Zoé</VALUE><x>&\x00\x1b",
        "\"q\" 'a'",
        "\u2603 snow\U0001f600",
        "a\r\nb\tc",
        "]]>",
    ],
)
def test_the_add_recipient_text_writer_matches_elementtree_byte_for_byte(value: str) -> None:
    sync = {"email_id": value or "x"}
    columns = {"first_name": value, value or "empty": "v", "email": "x@example.com"}

    assert add_recipient_document("12", sync, columns) == (
        add_recipient_document_with_elementtree("12", sync, columns)
    )
