"""`AcousticGateway` over httpx: OAuth refresh-token grant, XML API calls, response interpretation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Literal

import httpx

from ctms_adapters.acoustic.xml import (
    NotXmlError,
    XmlResponse,
    add_recipient_document,
    delete_relational_table_data_document,
    insert_update_relational_table_document,
    parse_response,
    remove_recipient_document,
)
from ctms_core.domain.acoustic import AcousticDeletion, AcousticRecord
from ctms_core.ports.acoustic import (
    AcousticAuthError,
    AcousticCall,
    AcousticError,
    AcousticFault,
    AcousticMethod,
    AcousticTable,
    AcousticUnavailable,
    RelationalTable,
    RowFailure,
    RowsReport,
)
from ctms_core.ports.request_slots import RequestSlots

__all__ = [
    "DEFAULT_SERVER_NUMBER",
    "HttpxAcousticGateway",
    "acoustic_base_url",
]

DEFAULT_SERVER_NUMBER: Final = 6
# Acoustic XML API error ids (Fault/detail/error/errorid).
SESSION_EXPIRED_ERROR_ID: Final = "145"  # "Session has expired or is invalid."
_RECIPIENT_GONE_ERROR_IDS: Final = frozenset(
    {
        "128",  # "Recipient is not a member of the list."
        "1008",  # "Recipient Not Found in List"
        "1009",  # "Recipient Already Deleted in Engage"
    }
)
# Refresh a cached access token this long before Acoustic says it expires (at most a tenth of its life).
_EXPIRY_MARGIN_S: Final = 60.0
# A DeleteRelationalTableData row failure that means the row is already gone: the deletion is done.
_ROW_GONE_DESCRIPTIONS: Final = ("row not found",)

BodyFormat = Literal["form", "xml"]


def acoustic_base_url(server_number: int = DEFAULT_SERVER_NUMBER) -> str:
    """The API host of an Acoustic Campaign pod (docs/contract.md §9.4)."""
    return f"https://api-campaign-us-{server_number}.goacoustic.com"


class _NoSlots:
    """No deployment-wide limit (a gateway given no `slots`)."""

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[None]:
        yield


class _AccessToken:
    __slots__ = ("expires_at", "value")

    def __init__(self, value: str, expires_at: float | None) -> None:
        self.value = value
        self.expires_at = expires_at


class HttpxAcousticGateway:
    """`AcousticGateway` port for Acoustic Campaign's XML API.

    The client owns connection pooling and its lifetime belongs to the caller (a container resource).
    Access tokens come from the refresh-token grant at `<base>/oauth/token`, are shared by concurrent
    uploads (one refresh at a time), reused until `_EXPIRY_MARGIN_S` before `expires_in`, and refreshed
    once when Acoustic rejects one (HTTP 401 or Fault errorid 145). No other retries: the worker owns
    retry and backoff.

    Requests are `POST <base>/XMLAPI` with `Authorization: Bearer …`. `body_format="form"` (default) sends
    the document as the form field `xml`, exactly as CTMS v3 did (docs/contract.md §9.4); `"xml"` sends it as the body with
    `Content-Type: text/xml;charset=utf-8`. Acoustic accepts both.

    Every HTTP request, the token grant included, holds one of `slots` (the deployment-wide limit of
    `CTMS_ACOUSTIC_MAX_CONCURRENT`) while it is in flight, and only then: waiting for a token or for the
    token lock holds none, so a refresh can never wait on a slot its own caller holds.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str | None = None,
        server_number: int = DEFAULT_SERVER_NUMBER,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        main_table_id: str,
        newsletter_table_id: str,
        waitlist_table_id: str,
        product_table_id: str,
        timeout: float = 5.0,
        body_format: BodyFormat = "form",
        monotonic: Callable[[], float] = time.monotonic,
        slots: RequestSlots | None = None,
    ) -> None:
        self._client = client
        self._slots: RequestSlots = slots or _NoSlots()
        self._base_url = (base_url or acoustic_base_url(server_number)).rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._list_id = str(main_table_id)
        self._table_ids: dict[RelationalTable, str] = {
            "newsletter": str(newsletter_table_id),
            "waitlist": str(waitlist_table_id),
            "product": str(product_table_id),
        }
        self._timeout = httpx.Timeout(timeout)
        self._body_format = body_format
        self._monotonic = monotonic
        self._token: _AccessToken | None = None
        self._token_lock = asyncio.Lock()

    @property
    def base_url(self) -> str:
        return self._base_url

    # --- port ---------------------------------------------------------------------------------------------

    async def add_recipient(self, record: AcousticRecord) -> AcousticCall:
        document = add_recipient_document(
            self._list_id, {"email_id": str(record.email_id)}, record.main
        )
        calls: list[AcousticCall] = []
        await self._step(calls, "main", "add_recipient", document)
        return calls[0]

    async def insert_update_rows(
        self, table: RelationalTable, rows: Sequence[Mapping[str, str]]
    ) -> RowsReport:
        document = insert_update_relational_table_document(self._table_ids[table], rows)
        calls: list[AcousticCall] = []
        response = await self._step(
            calls, table, "insert_update_relational_table", document, row_failures_allowed=True
        )
        return RowsReport(call=calls[0], failures=_row_failures(response, gone_is_ok=False))

    async def delete_rows(
        self, table: RelationalTable, key_rows: Sequence[Mapping[str, str]]
    ) -> RowsReport:
        document = delete_relational_table_data_document(self._table_ids[table], key_rows)
        calls: list[AcousticCall] = []
        response = await self._step(
            calls, table, "delete_relational_table_data", document, row_failures_allowed=True
        )
        return RowsReport(call=calls[0], failures=_row_failures(response, gone_is_ok=True))

    async def remove_recipient(self, deletion: AcousticDeletion) -> AcousticCall:
        document = remove_recipient_document(
            self._list_id, deletion.primary_email, {"email_id": str(deletion.email_id)}
        )
        calls: list[AcousticCall] = []
        await self._step(calls, "main", "remove_recipient", document, recipient_gone_is_ok=True)
        return calls[0]

    # --- one request --------------------------------------------------------------------------------------

    async def _step(
        self,
        calls: list[AcousticCall],
        table: AcousticTable,
        method: AcousticMethod,
        document: bytes,
        *,
        recipient_gone_is_ok: bool = False,
        row_failures_allowed: bool = False,
    ) -> XmlResponse | None:
        started = time.perf_counter()
        try:
            response = await self._request(document, row_failures_allowed=row_failures_allowed)
        except AcousticFault as fault:
            if recipient_gone_is_ok and fault.error_id in _RECIPIENT_GONE_ERROR_IDS:
                calls.append(_call(table, method, "success", started))
                return None
            calls.append(_call(table, method, "failure", started))
            fault.table, fault.calls = table, tuple(calls)
            raise
        except AcousticError as error:
            calls.append(_call(table, method, "failure", started))
            error.table, error.calls = table, tuple(calls)
            raise
        refused = response is not None and bool(response.failed_rows)
        calls.append(_call(table, method, "failure" if refused else "success", started))
        return response

    async def _request(self, document: bytes, *, row_failures_allowed: bool) -> XmlResponse:
        """POST one document, refreshing the access token once if Acoustic rejects it."""
        token = await self._access_token()
        status, response = await self._post_xml(document, token)
        if status == 401 or (response is not None and _session_expired(response)):
            self._forget(token)
            token = await self._access_token()
            status, response = await self._post_xml(document, token)
            if status == 401:
                raise AcousticAuthError("XML API rejected a freshly refreshed access token")
        return _raise_for(status, response, row_failures_allowed=row_failures_allowed)

    async def _post_xml(self, document: bytes, token: str) -> tuple[int, XmlResponse | None]:
        headers = {"Authorization": f"Bearer {token}"}
        if self._body_format == "form":
            request_kwargs: dict[str, Any] = {"data": {"xml": document.decode("ascii")}}
        else:
            headers["Content-Type"] = "text/xml;charset=utf-8"
            request_kwargs = {"content": document}
        # Built (the form encoding of the document included) before taking a slot: a slot is held only
        # while the request is on the wire.
        request = self._client.build_request(
            "POST",
            f"{self._base_url}/XMLAPI",
            headers=headers,
            timeout=self._timeout,
            **request_kwargs,
        )
        try:
            async with self._slots.acquire():
                response = await self._client.send(request)
        except httpx.TimeoutException as error:
            raise AcousticUnavailable(f"XML API timed out: {type(error).__name__}") from error
        except httpx.HTTPError as error:
            raise AcousticUnavailable(f"XML API unreachable: {type(error).__name__}") from error
        try:
            return response.status_code, parse_response(response.content)
        except NotXmlError:
            return response.status_code, None

    # --- OAuth --------------------------------------------------------------------------------------------

    def _forget(self, token: str) -> None:
        if self._token is not None and self._token.value == token:
            self._token = None

    def _valid_token(self) -> str | None:
        token = self._token
        if token is None:
            return None
        if token.expires_at is not None and self._monotonic() >= token.expires_at:
            return None
        return token.value

    async def _access_token(self) -> str:
        cached = self._valid_token()
        if cached is not None:
            return cached
        async with self._token_lock:
            cached = self._valid_token()  # another upload may have refreshed while we waited
            if cached is not None:
                return cached
            self._token = await self._refresh()
            return self._token.value

    async def _refresh(self) -> _AccessToken:
        requested_at = self._monotonic()
        try:
            async with self._slots.acquire():
                response = await self._client.post(
                    f"{self._base_url}/oauth/token",
                    headers={"Accept": "application/json"},
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": self._refresh_token,
                        "client_id": self._client_id,
                        "client_secret": self._client_secret,
                    },
                    timeout=self._timeout,
                )
        except httpx.TimeoutException as error:
            raise AcousticUnavailable(
                f"OAuth token request timed out: {type(error).__name__}"
            ) from error
        except httpx.HTTPError as error:
            raise AcousticUnavailable(
                f"OAuth token endpoint unreachable: {type(error).__name__}"
            ) from error
        if response.status_code >= 500:
            raise AcousticUnavailable(f"OAuth token endpoint answered HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError:
            raise AcousticAuthError(
                f"OAuth token response is not JSON (HTTP {response.status_code})"
            ) from None
        if not isinstance(payload, dict):
            raise AcousticAuthError("OAuth token response is not a JSON object")
        access_token = payload.get("access_token")
        if response.status_code != 200 or not isinstance(access_token, str) or not access_token:
            reason = (
                payload.get("error") if isinstance(payload.get("error"), str) else "no access_token"
            )
            raise AcousticAuthError(f"OAuth refresh failed (HTTP {response.status_code}): {reason}")
        new_refresh_token = payload.get("refresh_token")
        if isinstance(new_refresh_token, str) and new_refresh_token:
            self._refresh_token = new_refresh_token
        return _AccessToken(access_token, _expiry(requested_at, payload.get("expires_in")))


def _expiry(requested_at: float, expires_in: object) -> float | None:
    """When to stop using a token: `expires_in` counted from the request, minus a safety margin."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        return None  # no usable lifetime: keep it until Acoustic rejects it
    return requested_at + expires_in - min(_EXPIRY_MARGIN_S, expires_in / 10)


def _session_expired(response: XmlResponse) -> bool:
    return response.error_id == SESSION_EXPIRED_ERROR_ID


def _raise_for(
    status: int, response: XmlResponse | None, *, row_failures_allowed: bool
) -> XmlResponse:
    """The response when Acoustic took the request (relational requests: perhaps with refused rows,
    which the caller reads); else the error that says why not."""
    if response is None:
        raise AcousticUnavailable(f"XML API answered HTTP {status} with a body that is not XML")
    if response.fault_string is not None:
        raise AcousticFault(response.fault_string, error_id=response.error_id)
    if response.failures and not row_failures_allowed:
        raise AcousticFault("".join(response.failures))
    if status >= 400:
        raise AcousticUnavailable(f"XML API answered HTTP {status}")
    if response.success == "false":
        raise AcousticFault("SUCCESS is false and no Fault was given")
    return response


def _row_failures(response: XmlResponse | None, *, gone_is_ok: bool) -> tuple[RowFailure, ...]:
    if response is None:
        return ()
    return tuple(
        RowFailure(
            email_id=row.columns.get("email_id") or None,
            description=row.description or "row refused without a description",
            transient=row.failure_type == "transient",
        )
        for row in response.failed_rows
        if not (gone_is_ok and row.description.lower() in _ROW_GONE_DESCRIPTIONS)
    )


def _call(
    table: AcousticTable,
    method: AcousticMethod,
    status: Literal["success", "failure"],
    started: float,
) -> AcousticCall:
    return AcousticCall(
        table=table, method=method, status=status, duration_s=time.perf_counter() - started
    )
