"""A fake Acoustic Campaign server over real HTTP, speaking the wire format of docs/contract.md §9.4.

`running_fake_acoustic()` starts a `ThreadingHTTPServer` on 127.0.0.1 in a background thread and yields
a `FakeAcoustic` whose `base_url` the gateway is pointed at. One thread per request: latency and hangs
never block other requests, so it serves concurrent sync workers (and any event loop, or none).

It keeps what Acoustic would hold (recipients per list keyed by `email_id`, relational rows keyed by
`email_id` + the table's name column), a call log with the parsed request and its raw XML, and counters
of concurrent requests (`in_flight` and its maximum `max_in_flight`, counting every request the OAuth
token grant included; per recipient; and per bearer token: one token is one worker). `refuse_rows`
makes relational requests refuse the rows of given contacts the way Acoustic does: `SUCCESS` true and
a `FAILURE` per refused row naming its key columns, the other rows taken. Faults are scripted with `fail_next(kind, times)`
or `fail_every(nth, kind)`; `go_down("refused" | "5xx")` and `come_back()` simulate an outage, and
`latency_s` may be changed while the server runs (a slow Acoustic).
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs

FaultKind = Literal[
    "fault",  # <Fault> with FaultString and errorid (HTTP 200, as Acoustic does)
    "failures",  # <FAILURES><FAILURE …/></FAILURES> with SUCCESS TRUE
    "html500",  # HTTP 500 with an HTML page
    "hang",  # no answer until `hang_seconds` (or the server stops)
    "disconnect",  # close the connection without answering
    "unauthorized",  # HTTP 401 (an access token Acoustic no longer accepts)
    "session_expired",  # Fault errorid 145
    "success_false",  # <SUCCESS>false</SUCCESS> without a Fault
    "html200",  # HTTP 200 with an HTML page (a proxy's error page): not XML
]
OutageKind = Literal[
    "refused",  # the port is closed: connections are refused (open ones are dropped)
    "5xx",  # every request, the token grant included, answers HTTP 503 with an HTML page
]

SUCCESS_BODY = (
    "<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><RecipientId>123</RecipientId></RESULT>"
    "</Body></Envelope>"
)
_RELATIONAL_NAME_COLUMNS = ("newsletter_name", "waitlist_name", "product_id")


def fault_body(fault_string: str, error_id: str = "") -> str:
    error = (
        f"<detail><error><errorid>{error_id}</errorid></error></detail>"
        if error_id
        else "<detail/>"
    )
    return (
        "<Envelope><Body><RESULT><SUCCESS>false</SUCCESS></RESULT><Fault><Request/><FaultCode/>"
        f"<FaultString>{fault_string}</FaultString>{error}</Fault></Body></Envelope>"
    )


FAILURES_BODY = (
    "<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><FAILURES>"
    '<FAILURE failure_type="permanent" description="Field not found"/>'
    "</FAILURES></RESULT></Body></Envelope>"
)


def row_failures_body(
    rows: list[dict[str, str]], tag: str, failure_type: str, description: str
) -> str:
    """Acoustic's answer to a relational request with refused rows: SUCCESS true, then one FAILURE per
    row naming the row's key columns (`email_id` and the table's name column)."""
    failures = []
    for row in rows:
        failure = ET.Element("FAILURE", {"failure_type": failure_type, "description": description})
        for name in ("email_id", *_RELATIONAL_NAME_COLUMNS):
            if name in row:
                ET.SubElement(failure, tag, {"name": name}).text = row[name]
        failures.append(ET.tostring(failure, encoding="unicode"))
    return (
        "<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><FAILURES>"
        + "".join(failures)
        + "</FAILURES></RESULT></Body></Envelope>"
    )


HTML_500_BODY = "<html><body><h1>500 Internal Server Error</h1><p>oops"
HTML_503_BODY = "<html><body><h1>503 Service Unavailable</h1></body></html>"
HTML_200_BODY = "<html><body><h1>Please wait</h1><p>The service is busy.</p></body></html>"


@dataclass(frozen=True)
class FakeCall:
    """One `/XMLAPI` request as the fake understood it."""

    operation: str
    target_id: str  # LIST_ID or TABLE_ID
    email_id: str | None
    sync_fields: dict[str, str]
    columns: dict[str, str]  # AddRecipient / RemoveRecipient COLUMNs (absent VALUE = "")
    rows: list[
        dict[str, str]
    ]  # InsertUpdateRelationalTable ROWs, DeleteRelationalTableData KEY_COLUMNs
    email: str | None  # RemoveRecipient EMAIL
    raw_xml: str
    content_type: str
    authorization: str


@dataclass
class _Script:
    kind: FaultKind
    remaining: int | None  # None: until `clear_faults()`
    operation: str | None
    fault_string: str
    error_id: str
    every: int = 1  # fires on every `every`-th matching call
    seen: int = 0


@dataclass
class FakeAcoustic:
    """State and switches of one fake server. Read state through the methods (they lock)."""

    client_id: str = "fake-client-id"
    client_secret: str = "fake-client-secret"
    refresh_token: str = "fake-refresh-token"
    token_expires_in: int = 14399
    latency_s: float = 0.0
    hang_seconds: float = 10.0
    base_url: str = ""
    calls: list[FakeCall] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    recipients: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    tables: dict[str, dict[tuple[tuple[str, str], ...], dict[str, str]]] = field(
        default_factory=dict
    )
    max_in_flight: int = 0
    # The most requests writing one recipient's rows of one table at once (a contact uploaded twice
    # at once); one contact's newsletter and waitlist rows may travel in two requests at once.
    max_in_flight_per_recipient: dict[str, int] = field(default_factory=dict)
    faults_served: int = 0  # XML API calls answered with a scripted fault
    fault_rate: float = 0.0  # the share of XML API calls answered with a Fault, at random
    rows_refused: int = 0  # relational rows answered with a FAILURE
    requests_by_operation: dict[str, int] = field(default_factory=dict)  # every XML API request
    # ∫ in_flight dt over the time requests were being answered, and the first and last moments
    # (the mean number in flight, and the mean time a request spends in the fake).
    in_flight_seconds: float = 0.0
    requests_served: int = 0
    _busy_since: float | None = None
    _last_change: float = 0.0
    _busy_until: float = 0.0
    _refused_rows: dict[str, int | None] = field(default_factory=dict)
    _refusal_table: str | None = None
    _scripts: list[_Script] = field(default_factory=list)
    _token_failures: list[tuple[int, str]] = field(default_factory=list)
    _valid_tokens: set[str] = field(default_factory=set)
    _in_flight: int = 0
    _in_flight_per_recipient: dict[tuple[str, str], int] = field(default_factory=dict)
    _in_flight_per_authorization: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _down: OutageKind | None = None
    _refusal: tuple[str, str] = ("permanent", "")
    _random: random.Random = field(default_factory=lambda: random.Random(18))
    _listener: _Listener | None = field(default=None, repr=False)

    # --- switches -----------------------------------------------------------------------------------------

    def fail_next(
        self,
        kind: FaultKind,
        times: int = 1,
        *,
        operation: str | None = None,
        fault_string: str = "Email Address Is Invalid",
        error_id: str = "1017",
    ) -> None:
        """The next `times` XML API calls (of `operation` only, when given) answer with `kind`."""
        with self._lock:
            self._scripts.append(_Script(kind, times, operation, fault_string, error_id))

    def fail_every(
        self,
        nth: int,
        kind: FaultKind,
        *,
        times: int | None = None,
        operation: str | None = None,
        fault_string: str = "Email Address Is Invalid",
        error_id: str = "1017",
    ) -> None:
        """Every `nth` XML API call (of `operation` only, when given) answers with `kind`, `times` times
        in all, or until `clear_faults()` when `times` is None. The others are answered normally."""
        if nth < 1:
            raise ValueError("nth must be at least 1")
        with self._lock:
            self._scripts.append(_Script(kind, times, operation, fault_string, error_id, every=nth))

    def refuse_rows(
        self,
        *email_ids: str,
        times: int | None = 1,
        description: str = "Invalid Number in column: newsletter_source",
        failure_type: str = "permanent",
        table_id: str | None = None,
    ) -> None:
        """The relational rows (InsertUpdateRelationalTable, DeleteRelationalTableData) of these
        contacts are refused in the next `times` requests that carry them (None: until
        `clear_faults()`), each with a `FAILURE failure_type=… description=…` naming its key columns.
        With `table_id`, only requests to that relational table refuse them: the tables' requests of one
        delivery travel concurrently, so which one arrives first is not a test's to choose.
        """
        with self._lock:
            for email_id in email_ids:
                self._refused_rows[email_id] = times
            self._refusal = (failure_type, description)
            self._refusal_table = table_id

    def _take_refusals(self, call: FakeCall) -> list[dict[str, str]]:
        """The rows of `call` refused now (each refused contact counts one request)."""
        with self._lock:
            refused_ids: set[str] = set()
            if self._refusal_table is not None and call.target_id != self._refusal_table:
                return []
            for row in call.rows:
                email_id = row.get("email_id", "")
                if email_id in self._refused_rows:
                    refused_ids.add(email_id)
            for email_id in refused_ids:
                remaining = self._refused_rows[email_id]
                if remaining is not None:
                    if remaining <= 1:
                        del self._refused_rows[email_id]
                    else:
                        self._refused_rows[email_id] = remaining - 1
            refused = [row for row in call.rows if row.get("email_id") in refused_ids]
            self.rows_refused += len(refused)
            return refused

    def clear_faults(self) -> None:
        """Forget every scripted fault not yet served (`fail_next`, `fail_every`, `fail_token`)."""
        with self._lock:
            self._scripts.clear()
            self._token_failures.clear()
            self._refused_rows.clear()

    def go_down(self, kind: OutageKind = "refused") -> None:
        """Acoustic becomes unreachable until `come_back()` (see `OutageKind`)."""
        self._down = kind
        if kind == "refused":
            if self._listener is None:
                raise RuntimeError("only a fake started by running_fake_acoustic() can refuse")
            self._listener.stop()

    def come_back(self) -> None:
        """End `go_down()`: the same port accepts connections again and requests are served."""
        was = self._down
        self._down = None
        if was == "refused" and self._listener is not None:
            self._listener.start()

    @property
    def in_flight(self) -> int:
        """XML API requests being answered right now."""
        with self._lock:
            return self._in_flight

    def uploaders_in_flight(self) -> int:
        """Distinct access tokens with an XML API request being answered right now: each sync worker
        holds its own token, so this counts the workers in the middle of an upload."""
        with self._lock:
            return sum(1 for count in self._in_flight_per_authorization.values() if count)

    def fail_token(
        self, times: int = 1, *, status: int = 400, error: str = "invalid_grant"
    ) -> None:
        """The next `times` token requests answer `status` with `{"error": error}`."""
        with self._lock:
            self._token_failures.extend([(status, error)] * times)

    def revoke_tokens(self) -> None:
        """Every access token issued so far is rejected with HTTP 401 from now on."""
        with self._lock:
            self._valid_tokens.clear()

    # --- what Acoustic holds ------------------------------------------------------------------------------

    def recipient(self, list_id: str, email_id: str) -> dict[str, str] | None:
        with self._lock:
            columns = self.recipients.get(list_id, {}).get(email_id)
            return dict(columns) if columns is not None else None

    def rows(self, table_id: str, email_id: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            return [
                dict(row)
                for row in self.tables.get(table_id, {}).values()
                if email_id is None or row.get("email_id") == email_id
            ]

    def calls_of(self, operation: str) -> list[FakeCall]:
        with self._lock:
            return [call for call in self.calls if call.operation == operation]

    # --- request handling (called from handler threads) ---------------------------------------------------

    def _issue_token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        with self._lock:
            self.token_requests.append(form)
            if self._token_failures:
                status, error = self._token_failures.pop(0)
                return status, {"error": error, "error_description": "scripted failure"}
            expected = {
                "grant_type": "refresh_token",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "refresh_token": self.refresh_token,
            }
            if any(form.get(name) != value for name, value in expected.items()):
                return 400, {"error": "invalid_grant"}
            token = uuid.uuid4().hex
            self._valid_tokens.add(token)
            return 200, {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_expires_in,
            }

    def _authorised(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            return scheme.lower() == "bearer" and token in self._valid_tokens

    def _next_script(self, operation: str) -> _Script | None:
        with self._lock:
            for script in self._scripts:
                if script.operation in (None, operation):
                    script.seen += 1
                    if script.seen % script.every:
                        continue
                    if script.remaining is not None:
                        script.remaining -= 1
                        if script.remaining <= 0:
                            self._scripts.remove(script)
                    self.faults_served += 1
                    return script
            if self.fault_rate and self._random.random() < self.fault_rate:
                self.faults_served += 1
                return _Script("fault", None, None, "Database Error: please retry", "2")
        return None

    def _account(self) -> None:
        """Add the time since the last change of `in_flight` to its integral (under the lock)."""
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        else:
            self.in_flight_seconds += self._in_flight * (now - self._last_change)
        self._last_change = self._busy_until = now

    def _enter(self, email_id: str | None, authorization: str | None, target_id: str = "") -> None:
        with self._lock:
            self._account()
            self._in_flight += 1
            if authorization is not None:
                by_token = self._in_flight_per_authorization
                by_token[authorization] = by_token.get(authorization, 0) + 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            if email_id is not None:
                count = self._in_flight_per_recipient.get((email_id, target_id), 0) + 1
                self._in_flight_per_recipient[email_id, target_id] = count
                previous = self.max_in_flight_per_recipient.get(email_id, 0)
                self.max_in_flight_per_recipient[email_id] = max(previous, count)

    def _leave(self, email_id: str | None, authorization: str | None, target_id: str = "") -> None:
        with self._lock:
            self._account()
            self._in_flight -= 1
            self.requests_served += 1
            if authorization is not None:
                self._in_flight_per_authorization[authorization] -= 1
            if email_id is not None:
                self._in_flight_per_recipient[email_id, target_id] -= 1

    def _apply(self, call: FakeCall, refused: Sequence[dict[str, str]] = ()) -> None:
        if refused:
            call = replace(call, rows=[row for row in call.rows if row not in refused])
        with self._lock:
            self.calls.append(call)
            if call.operation == "AddRecipient" and call.email_id is not None:
                recipients = self.recipients.setdefault(call.target_id, {})
                recipients.setdefault(call.email_id, {}).update(call.columns)
            elif call.operation == "InsertUpdateRelationalTable":
                table = self.tables.setdefault(call.target_id, {})
                for row in call.rows:
                    key = tuple(
                        (name, row.get(name, ""))
                        for name in ("email_id", *_RELATIONAL_NAME_COLUMNS)
                        if name in row
                    )
                    table.setdefault(key, {}).update(row)
            elif call.operation == "DeleteRelationalTableData":
                table = self.tables.get(call.target_id, {})
                for key_row in call.rows:
                    for key in [
                        k
                        for k, row in table.items()
                        if all(row.get(n) == v for n, v in key_row.items())
                    ]:
                        del table[key]
            elif call.operation == "RemoveRecipient" and call.email_id is not None:
                self.recipients.get(call.target_id, {}).pop(call.email_id, None)

    def _recipient_known(self, call: FakeCall) -> bool:
        with self._lock:
            return call.email_id in self.recipients.get(call.target_id, {})


def _text(element: ET.Element | None) -> str:
    return (element.text or "") if element is not None else ""


def _name_values(parent: ET.Element, tag: str) -> dict[str, str]:
    return {_text(item.find("NAME")): _text(item.find("VALUE")) for item in parent.findall(tag)}


def parse_request(raw_xml: str, content_type: str, authorization: str) -> FakeCall:
    """Parse one XML API document; raises `ET.ParseError` or `ValueError` when it is not one."""
    root = ET.fromstring(raw_xml)  # noqa: S314 - our own test traffic
    if root.tag != "Envelope" or (body := root.find("Body")) is None or len(body) != 1:
        raise ValueError("not an Envelope/Body/<operation> document")
    operation = body[0]
    sync_fields: dict[str, str] = {}
    columns: dict[str, str] = {}
    rows: list[dict[str, str]] = []
    email_id: str | None = None
    email: str | None = None
    if operation.tag == "AddRecipient":
        target = _text(operation.find("LIST_ID"))
        sync = operation.find("SYNC_FIELDS")
        sync_fields = _name_values(sync, "SYNC_FIELD") if sync is not None else {}
        columns = _name_values(operation, "COLUMN")
        email_id = sync_fields.get("email_id") or columns.get("email_id")
    elif operation.tag == "RemoveRecipient":
        target = _text(operation.find("LIST_ID"))
        email = _text(operation.find("EMAIL"))
        columns = _name_values(operation, "COLUMN")
        email_id = columns.get("email_id")
    elif operation.tag in ("InsertUpdateRelationalTable", "DeleteRelationalTableData"):
        target = _text(operation.find("TABLE_ID"))
        tag = "COLUMN" if operation.tag == "InsertUpdateRelationalTable" else "KEY_COLUMN"
        for row in operation.findall("ROWS/ROW"):
            rows.append({column.get("name", ""): _text(column) for column in row.findall(tag)})
        ids = {row.get("email_id") for row in rows} - {None}
        email_id = ids.pop() if len(ids) == 1 else None
    else:
        raise ValueError(f"unsupported operation {operation.tag}")
    return FakeCall(
        operation=operation.tag,
        target_id=target,
        email_id=email_id,
        sync_fields=sync_fields,
        columns=columns,
        rows=rows,
        email=email,
        raw_xml=raw_xml,
        content_type=content_type,
        authorization=authorization,
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave together: no delayed-ACK stalls
    wbufsize = 64 * 1024
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(self, status: int, body: str, content_type: str) -> None:
        payload = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _xml(self, status: int, body: str) -> None:
        self._reply(status, body, "text/xml;charset=utf-8")

    def do_POST(self) -> None:
        fake = self.server.fake
        if fake._down == "refused":  # a connection opened before the outage: drop it
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        content_type = self.headers.get("Content-Type", "")
        if fake._down == "5xx":
            self._reply(503, HTML_503_BODY, "text/html")
            return
        if self.path == "/oauth/token":
            form = {name: values[0] for name, values in parse_qs(raw.decode("utf-8")).items()}
            fake._enter(None, None)
            try:
                if fake.latency_s:
                    time.sleep(fake.latency_s)
                status, payload = fake._issue_token(form)
                self._reply(status, json.dumps(payload), "application/json")
            finally:
                fake._leave(None, None)
            return
        if self.path != "/XMLAPI":
            self._reply(404, "not found", "text/plain")
            return
        if content_type.startswith("application/x-www-form-urlencoded"):
            document = parse_qs(raw.decode("utf-8")).get("xml", [""])[0]
        else:
            document = raw.decode("utf-8")
        authorization = self.headers.get("Authorization", "")
        try:
            call = parse_request(document, content_type, authorization)
        except (ET.ParseError, ValueError):
            self._xml(200, fault_body("Invalid XML Request", "51"))
            return
        with fake._lock:
            count = fake.requests_by_operation.get(call.operation, 0)
            fake.requests_by_operation[call.operation] = count + 1
        fake._enter(call.email_id, call.authorization, call.target_id)
        try:
            self._answer(fake, call)
        finally:
            fake._leave(call.email_id, call.authorization, call.target_id)

    def _answer(self, fake: FakeAcoustic, call: FakeCall) -> None:
        if fake.latency_s:
            time.sleep(fake.latency_s)
        if not fake._authorised(call.authorization):
            self._xml(401, fault_body("Session has expired or is invalid.", "145"))
            return
        script = fake._next_script(call.operation)
        if script is not None:
            self._scripted(fake, script)
            return
        if call.operation == "RemoveRecipient" and not fake._recipient_known(call):
            with fake._lock:
                fake.calls.append(call)
            self._xml(200, fault_body("Recipient is not a member of the list.", "128"))
            return
        refused = (
            fake._take_refusals(call)
            if call.operation in ("InsertUpdateRelationalTable", "DeleteRelationalTableData")
            else []
        )
        fake._apply(call, refused)
        if refused:
            tag = "COLUMN" if call.operation == "InsertUpdateRelationalTable" else "KEY_COLUMN"
            self._xml(200, row_failures_body(refused, tag, *fake._refusal))
            return
        self._xml(200, SUCCESS_BODY)

    def _scripted(self, fake: FakeAcoustic, script: _Script) -> None:
        kind = script.kind
        if kind == "fault":
            self._xml(200, fault_body(script.fault_string, script.error_id))
        elif kind == "session_expired":
            self._xml(200, fault_body("Session has expired or is invalid.", "145"))
        elif kind == "failures":
            self._xml(200, FAILURES_BODY)
        elif kind == "success_false":
            self._xml(
                200, "<Envelope><Body><RESULT><SUCCESS>false</SUCCESS></RESULT></Body></Envelope>"
            )
        elif kind == "html500":
            self._reply(500, HTML_500_BODY, "text/html")
        elif kind == "html200":
            self._reply(200, HTML_200_BODY, "text/html")
        elif kind == "unauthorized":
            self._xml(401, fault_body("Session has expired or is invalid.", "145"))
        elif kind == "hang":
            fake._stopping.wait(fake.hang_seconds)
            self.close_connection = True
        elif kind == "disconnect":
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, fake: FakeAcoustic, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake


class _Listener:
    """The listening server of a fake, which `go_down("refused")` closes and `come_back()` reopens on
    the same port (HTTPServer sets SO_REUSEADDR)."""

    def __init__(self, fake: FakeAcoustic) -> None:
        self.fake = fake
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        server = _Server(self.fake, port=self.port)
        self.port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-acoustic",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def running_fake_acoustic(**settings: object) -> Iterator[FakeAcoustic]:
    """Start a fake Acoustic on a free local port; `settings` are `FakeAcoustic` fields."""
    fake = FakeAcoustic(**settings)  # type: ignore[arg-type]
    listener = _Listener(fake)
    listener.start()
    fake._listener = listener
    fake.base_url = f"http://127.0.0.1:{listener.port}"
    try:
        yield fake
    finally:
        fake._stopping.set()
        listener.stop()


def main() -> None:
    """`python -m tests.support.fake_acoustic [--latency S] [--port N]`: serve until interrupted, printing
    the base URL first (for benchmarks that keep the fake out of the measured process)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument(
        "--stats-file", help="write max in flight and calls per operation there at exit"
    )
    arguments = parser.parse_args()
    fake = FakeAcoustic(latency_s=arguments.latency, fault_rate=arguments.fault_rate)
    server = _Server(fake, port=arguments.port)
    host, port = server.server_address[:2]

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    print(f"http://{host!s}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if arguments.stats_file:
            write_stats(fake, arguments.stats_file)


def write_stats(fake: FakeAcoustic, path: str) -> None:
    """The figures a benchmark reads back: the most requests ever in flight at once, the calls per
    operation, the faults served."""
    with fake._lock:
        stats = {
            "max_in_flight": fake.max_in_flight,
            "calls": dict(fake.requests_by_operation),
            "token_requests": len(fake.token_requests),
            "faults_served": fake.faults_served,
            "mean_in_flight": fake.in_flight_seconds
            / max(fake._busy_until - (fake._busy_since or 0.0), 1e-9),
            "mean_request_s": fake.in_flight_seconds / max(fake.requests_served, 1),
        }
    with open(path, "w", encoding="utf-8") as file:
        json.dump(stats, file)


if __name__ == "__main__":
    main()
