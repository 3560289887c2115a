"""`HttpxAcousticGateway` against an in-process Acoustic (httpx.MockTransport): requests, OAuth, errors."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx
import pytest

from ctms_adapters.acoustic import HttpxAcousticGateway, acoustic_base_url
from ctms_core.domain.acoustic import AcousticDeletion, AcousticRecord
from ctms_core.ports.acoustic import (
    AcousticAuthError,
    AcousticError,
    AcousticFault,
    AcousticGateway,
    AcousticUnavailable,
    RowFailure,
)

BASE = "https://api-campaign-us-6.goacoustic.com"
EMAIL_ID = uuid.UUID("67e52c77-950f-4f28-accb-bb3ea1a2c51a")
SUCCESS = b"<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS></RESULT></Body></Envelope>"


def fault(text: str, error_id: str) -> bytes:
    return (
        f"<Envelope><Body><RESULT><SUCCESS>false</SUCCESS></RESULT><Fault><FaultString>{text}"
        f"</FaultString><detail><error><errorid>{error_id}</errorid></error></detail></Fault>"
        "</Body></Envelope>"
    ).encode()


Reply = httpx.Response | Exception


@dataclass
class ScriptedAcoustic:
    """An in-process Acoustic: records requests; XML API replies come from `replies`, else success."""

    replies: list[Reply] = field(default_factory=list)
    token_replies: list[Reply] = field(default_factory=list)
    expires_in: int = 3600
    token_requests: list[dict[str, str]] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    issued: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/oauth/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.token_requests.append(form)
            if self.token_replies:
                return self._reply(self.token_replies.pop(0))
            self.issued += 1
            return httpx.Response(
                200, json={"access_token": f"token-{self.issued}", "expires_in": self.expires_in}
            )
        if request.headers["content-type"].startswith("application/x-www-form-urlencoded"):
            self.documents.append(parse_qs(request.content.decode())["xml"][0])
        else:
            self.documents.append(request.content.decode())
        if self.replies:
            return self._reply(self.replies.pop(0))
        return httpx.Response(200, content=SUCCESS)

    @staticmethod
    def _reply(reply: Reply) -> httpx.Response:
        if isinstance(reply, Exception):
            raise reply
        return reply

    def operations(self) -> list[str]:
        return [document.split("<Body><", 1)[1].split(">", 1)[0] for document in self.documents]

    def bearer_tokens(self) -> list[str]:
        return [r.headers["authorization"] for r in self.requests if r.url.path == "/XMLAPI"]


class ManualMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_gateway(
    acoustic: ScriptedAcoustic, monotonic: Callable[[], float] | None = None, **overrides: object
) -> HttpxAcousticGateway:
    settings: dict[str, object] = {
        "client_id": "id",
        "client_secret": "secret",
        "refresh_token": "refresh",
        "main_table_id": "1234",
        "newsletter_table_id": "9",
        "waitlist_table_id": "10",
        "product_table_id": "11",
    }
    settings.update(overrides)
    if monotonic is not None:
        settings["monotonic"] = monotonic
    client = httpx.AsyncClient(transport=httpx.MockTransport(acoustic))
    return HttpxAcousticGateway(client, **settings)  # type: ignore[arg-type]


def record(*, newsletters: int = 1, waitlists: int = 0, products: int = 1) -> AcousticRecord:
    row = {"email_id": str(EMAIL_ID), "name": "x"}
    return AcousticRecord(
        email_id=EMAIL_ID,
        main={"email": "fan@example.com", "email_id": str(EMAIL_ID)},
        newsletters=(row,) * newsletters,
        waitlists=(row,) * waitlists,
        products=(row,) * products,
    )


async def test_each_request_goes_to_its_list_or_table_and_reports_its_call() -> None:
    """docs/contract.md §9.4: AddRecipient on the main list, InsertUpdateRelationalTable on the table's id
    with every row given; each answer is the `AcousticCall` of its request."""
    acoustic = ScriptedAcoustic()
    gateway: AcousticGateway = make_gateway(acoustic)
    sent = record(newsletters=2, waitlists=0, products=1)

    added = await gateway.add_recipient(sent)
    newsletters = await gateway.insert_update_rows("newsletter", sent.newsletters)
    products = await gateway.insert_update_rows("product", sent.products)

    assert acoustic.operations() == [
        "AddRecipient",
        "InsertUpdateRelationalTable",
        "InsertUpdateRelationalTable",
    ]
    assert "<LIST_ID>1234</LIST_ID>" in acoustic.documents[0]
    assert "<TABLE_ID>9</TABLE_ID>" in acoustic.documents[1]
    assert acoustic.documents[1].count("<ROW>") == 2
    assert "<TABLE_ID>11</TABLE_ID>" in acoustic.documents[2]
    assert [(c.table, c.method, c.status) for c in (added, newsletters.call, products.call)] == [
        ("main", "add_recipient", "success"),
        ("newsletter", "insert_update_relational_table", "success"),
        ("product", "insert_update_relational_table", "success"),
    ]
    assert newsletters.failures == products.failures == ()


async def test_refused_rows_are_row_failures_and_rows_already_gone_count_as_deleted() -> None:
    """A relational request answered with `FAILURE`s is not raised: each refused row is a `RowFailure`
    naming its `email_id` (the caller fails only that contact); a deletion's `Row Not Found` is done."""
    refused = (
        b"<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><FAILURES>"
        b'<FAILURE failure_type="transient" description="Invalid value">'
        b'<COLUMN name="email_id">' + str(EMAIL_ID).encode() + b"</COLUMN></FAILURE>"
        b"</FAILURES></RESULT></Body></Envelope>"
    )
    gone = (
        b"<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><FAILURES>"
        b'<FAILURE failure_type="permanent" description="Row Not Found">'
        b'<KEY_COLUMN name="email_id">' + str(EMAIL_ID).encode() + b"</KEY_COLUMN></FAILURE>"
        b"</FAILURES></RESULT></Body></Envelope>"
    )
    acoustic = ScriptedAcoustic(
        replies=[httpx.Response(200, content=refused), httpx.Response(200, content=gone)]
    )
    gateway = make_gateway(acoustic)

    inserted = await gateway.insert_update_rows("newsletter", record(newsletters=1).newsletters)
    deleted = await gateway.delete_rows("newsletter", [{"email_id": str(EMAIL_ID)}])

    assert inserted.failures == (
        RowFailure(email_id=str(EMAIL_ID), description="Invalid value", transient=True),
    )
    assert inserted.call.status == "failure"
    assert deleted.failures == ()


async def test_requests_post_the_document_as_the_xml_form_field_with_a_bearer_token() -> None:
    """docs/contract.md §9.4: `POST <base>/XMLAPI`, form field `xml`, `Authorization: Bearer <token>`."""
    acoustic = ScriptedAcoustic()

    await make_gateway(acoustic).add_recipient(record())

    api = acoustic.requests[-1]
    assert str(api.url) == f"{BASE}/XMLAPI"
    assert api.headers["authorization"] == "Bearer token-1"
    assert api.headers["content-type"] == "application/x-www-form-urlencoded"
    assert acoustic.documents[0].startswith("<Envelope><Body><AddRecipient><LIST_ID>1234</LIST_ID>")


async def test_the_xml_body_format_posts_text_xml() -> None:
    """`body_format="xml"` sends the document itself as `text/xml;charset=utf-8`."""
    acoustic = ScriptedAcoustic()

    await make_gateway(acoustic, body_format="xml").add_recipient(record())

    assert acoustic.requests[-1].headers["content-type"] == "text/xml;charset=utf-8"
    assert acoustic.operations() == ["AddRecipient"]


async def test_the_token_grant_sends_the_refresh_token_form_to_the_oauth_endpoint() -> None:
    """docs/contract.md §9.4 token refresh: `grant_type=refresh_token` with client id and secret."""
    acoustic = ScriptedAcoustic()

    await make_gateway(acoustic).add_recipient(record())

    token_request = acoustic.requests[0]
    assert str(token_request.url) == f"{BASE}/oauth/token"
    assert token_request.headers["accept"] == "application/json"
    assert acoustic.token_requests == [
        {
            "grant_type": "refresh_token",
            "refresh_token": "refresh",
            "client_id": "id",
            "client_secret": "secret",
        }
    ]


async def test_the_access_token_is_reused_until_shortly_before_it_expires() -> None:
    """One grant serves many calls; past `expires_in` minus the margin a new one is fetched."""
    acoustic = ScriptedAcoustic(expires_in=3600)
    clock = ManualMonotonic()
    gateway = make_gateway(acoustic, monotonic=clock)

    await gateway.add_recipient(record())
    clock.now += 3600 - 61
    await gateway.add_recipient(record())
    assert len(acoustic.token_requests) == 1
    clock.now += 2  # inside the last minute
    await gateway.add_recipient(record())

    assert len(acoustic.token_requests) == 2
    assert acoustic.bearer_tokens()[-1] == "Bearer token-2"


async def test_a_new_refresh_token_from_the_grant_replaces_the_old_one() -> None:
    """When the grant returns a `refresh_token`, the next grant uses it."""
    acoustic = ScriptedAcoustic(
        token_replies=[
            httpx.Response(200, json={"access_token": "a", "expires_in": 1, "refresh_token": "new"})
        ]
    )
    clock = ManualMonotonic()
    gateway = make_gateway(acoustic, monotonic=clock)

    await gateway.add_recipient(record())
    clock.now += 5
    await gateway.add_recipient(record())

    assert acoustic.token_requests[1]["refresh_token"] == "new"


async def test_concurrent_requests_share_one_token_refresh() -> None:
    """Ten requests started together make a single grant request."""
    acoustic = ScriptedAcoustic()
    gateway = make_gateway(acoustic)

    await asyncio.gather(*(gateway.add_recipient(record()) for _ in range(10)))

    assert len(acoustic.token_requests) == 1


@pytest.mark.parametrize(
    "rejection",
    [
        httpx.Response(401, content=fault("Session has expired or is invalid.", "145")),
        httpx.Response(200, content=fault("Session has expired or is invalid.", "145")),
    ],
)
async def test_a_rejected_token_is_refreshed_once_and_the_request_repeated(
    rejection: httpx.Response,
) -> None:
    """HTTP 401 or Fault errorid 145: new token, same document, success."""
    acoustic = ScriptedAcoustic(replies=[rejection])

    call = await make_gateway(acoustic).add_recipient(record())

    assert len(acoustic.token_requests) == 2
    assert acoustic.bearer_tokens() == ["Bearer token-1", "Bearer token-2"]
    assert acoustic.documents[0] == acoustic.documents[1]
    assert call.status == "success"


async def test_a_token_rejected_twice_is_an_auth_error() -> None:
    """No second refresh: the worker retries later."""
    unauthorized = httpx.Response(401, content=b"")
    acoustic = ScriptedAcoustic(replies=[unauthorized, httpx.Response(401, content=b"")])

    with pytest.raises(AcousticAuthError):
        await make_gateway(acoustic).add_recipient(record())

    assert len(acoustic.token_requests) == 2


@pytest.mark.parametrize(
    ("token_reply", "error"),
    [
        (httpx.Response(400, json={"error": "invalid_grant"}), AcousticAuthError),
        (httpx.Response(200, json={"token_type": "bearer"}), AcousticAuthError),
        (httpx.Response(200, content=b"<html>login</html>"), AcousticAuthError),
        (httpx.Response(503, content=b"busy"), AcousticUnavailable),
        (httpx.ConnectTimeout("slow"), AcousticUnavailable),
        (httpx.ConnectError("refused"), AcousticUnavailable),
    ],
)
async def test_oauth_failures_surface_as_acoustic_errors_before_any_api_call(
    token_reply: Reply, error: type[AcousticError]
) -> None:
    """Rejected or unusable grants are auth errors; an unreachable token endpoint is unavailability."""
    acoustic = ScriptedAcoustic(token_replies=[token_reply])

    with pytest.raises(error) as raised:
        await make_gateway(acoustic).add_recipient(record())

    assert acoustic.documents == []
    assert raised.value.table == "main"
    assert "secret" not in str(raised.value)


async def test_a_fault_carries_its_message_error_id_table_and_failed_call() -> None:
    """A relational request refused as a whole raises; the error names the table and holds the call."""
    acoustic = ScriptedAcoustic(replies=[httpx.Response(200, content=fault("Bad row", "1007"))])

    with pytest.raises(AcousticFault) as raised:
        await make_gateway(acoustic).insert_update_rows("newsletter", record().newsletters)

    fault_error = raised.value
    assert (fault_error.fault_string, fault_error.error_id, fault_error.table) == (
        "Bad row",
        "1007",
        "newsletter",
    )
    assert [(c.table, c.method, c.status) for c in fault_error.calls] == [
        ("newsletter", "insert_update_relational_table", "failure"),
    ]
    assert acoustic.operations() == ["InsertUpdateRelationalTable"]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            httpx.Response(
                200,
                content=b"<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><FAILURES><FAILURE "
                b'failure_type="permanent" description="Field not found"/></FAILURES></RESULT></Body></Envelope>',
            ),
            AcousticFault,
        ),
        (
            httpx.Response(500, content=b"<html><body>Internal Server Error</body></html"),
            AcousticUnavailable,
        ),
        (httpx.Response(502, content=SUCCESS), AcousticUnavailable),
        (httpx.Response(200, content=b"not xml at all"), AcousticUnavailable),
        (
            httpx.Response(200, content=b"<html><body>Maintenance</body></html>"),
            AcousticUnavailable,
        ),
        (httpx.ReadTimeout("slow"), AcousticUnavailable),
        (httpx.RemoteProtocolError("Server disconnected"), AcousticUnavailable),
        (httpx.ConnectError("refused"), AcousticUnavailable),
    ],
)
async def test_each_kind_of_upstream_trouble_maps_to_its_error_class(
    reply: Reply, error: type[AcousticError]
) -> None:
    """FAILURES → fault; 5xx, non-XML, timeouts, dropped connections → unavailable (all retryable)."""
    acoustic = ScriptedAcoustic(replies=[reply])

    with pytest.raises(error) as raised:
        await make_gateway(acoustic).add_recipient(record())

    assert [(c.table, c.status) for c in raised.value.calls] == [("main", "failure")]


async def test_an_erasure_deletes_relational_rows_by_key_and_removes_the_recipient() -> None:
    """docs/contract.md §9.5: DeleteRelationalTableData on each table's id (full keys when known, else
    `email_id` alone), and RemoveRecipient by address and `email_id`."""
    acoustic = ScriptedAcoustic()
    deletion = AcousticDeletion(
        email_id=EMAIL_ID, primary_email="fan@example.com", newsletter_names=("hubs", "miti")
    )
    gateway = make_gateway(acoustic)
    key_rows = deletion.key_rows()

    newsletters = await gateway.delete_rows("newsletter", key_rows["newsletter"])
    waitlists = await gateway.delete_rows("waitlist", key_rows["waitlist"])
    removed = await gateway.remove_recipient(deletion)

    assert acoustic.operations() == [
        "DeleteRelationalTableData",
        "DeleteRelationalTableData",
        "RemoveRecipient",
    ]
    assert "<TABLE_ID>9</TABLE_ID>" in acoustic.documents[0]
    assert acoustic.documents[0].count("<ROW>") == 2
    assert '<KEY_COLUMN name="newsletter_name">miti</KEY_COLUMN>' in acoustic.documents[0]
    assert "<TABLE_ID>10</TABLE_ID>" in acoustic.documents[1]
    assert acoustic.documents[1].count("<KEY_COLUMN") == 1  # no known waitlists: by email_id alone
    assert "<LIST_ID>1234</LIST_ID>" in acoustic.documents[2]
    assert "<EMAIL>fan@example.com</EMAIL>" in acoustic.documents[2]
    assert [(c.method, c.status) for c in (newsletters.call, waitlists.call, removed)] == [
        ("delete_relational_table_data", "success"),
        ("delete_relational_table_data", "success"),
        ("remove_recipient", "success"),
    ]


@pytest.mark.parametrize("error_id", ["128", "1008", "1009"])
async def test_removing_a_recipient_already_gone_succeeds(error_id: str) -> None:
    """A retried erasure completes: "not a member" / "not found" / "already deleted" on RemoveRecipient
    is success."""
    acoustic = ScriptedAcoustic(
        replies=[
            httpx.Response(200, content=fault("Recipient is not a member of the list.", error_id)),
        ]
    )

    call = await make_gateway(acoustic).remove_recipient(
        AcousticDeletion(email_id=EMAIL_ID, primary_email="a@example.com")
    )

    assert (call.method, call.status) == ("remove_recipient", "success")


async def test_other_remove_recipient_faults_are_raised() -> None:
    """Any other fault on RemoveRecipient is an error for the worker to retry."""
    acoustic = ScriptedAcoustic(replies=[httpx.Response(200, content=fault("Boom", "138"))])

    with pytest.raises(AcousticFault) as raised:
        await make_gateway(acoustic).remove_recipient(
            AcousticDeletion(email_id=EMAIL_ID, primary_email="a@example.com")
        )

    assert [(c.table, c.method, c.status) for c in raised.value.calls] == [
        ("main", "remove_recipient", "failure")
    ]


def test_the_default_base_url_comes_from_the_server_number() -> None:
    """`https://api-campaign-us-<N>.goacoustic.com`, N = 6 by default (docs/contract.md §9.4)."""
    acoustic = ScriptedAcoustic()

    assert acoustic_base_url() == BASE
    assert (
        make_gateway(acoustic, server_number=3).base_url
        == "https://api-campaign-us-3.goacoustic.com"
    )
    assert make_gateway(acoustic, base_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"


def test_error_reprs_are_informative_for_last_error() -> None:
    """`last_error` stores `repr(error)`: class, message and table."""
    assert repr(AcousticFault("Email Address Is Invalid", table="main")) == (
        "AcousticFault('Email Address Is Invalid', table='main')"
    )
    assert json.dumps(repr(AcousticUnavailable("x")))


async def test_every_request_the_token_grant_included_is_made_holding_a_slot() -> None:
    """A slot is held around each HTTP request, and none while waiting for a token: with a limit of
    one, a refresh triggered by a rejected token cannot wait on a slot its own caller holds."""
    from ctms_adapters.memory.request_slots import InMemoryRequestSlots

    slots = InMemoryRequestSlots(1)
    held_during: list[tuple[str, int]] = []

    class Observed(ScriptedAcoustic):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            held_during.append((request.url.path, slots.held))
            return super().__call__(request)

    acoustic = Observed(replies=[httpx.Response(401)])  # the first token is rejected once
    gateway = make_gateway(acoustic, slots=slots)

    async def add_then_insert() -> None:
        sent = record(newsletters=1, products=0)
        await gateway.add_recipient(sent)
        await gateway.insert_update_rows("newsletter", sent.newsletters)

    await asyncio.wait_for(add_then_insert(), 5)

    assert held_during == [
        ("/oauth/token", 1),
        ("/XMLAPI", 1),
        ("/oauth/token", 1),
        ("/XMLAPI", 1),
        ("/XMLAPI", 1),
    ]
    assert slots.held == 0 and slots.max_held == 1
