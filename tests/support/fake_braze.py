"""A fake Braze REST API over real HTTP: `POST /users/track` and `POST /users/delete` (docs/braze.md).

`running_fake_braze()` starts a `ThreadingHTTPServer` on 127.0.0.1 in a background thread and yields a
`FakeBraze` whose `base_url` the gateway is pointed at. One thread per request, so latency and hangs never
block other requests and the in-flight counter sees real concurrency.

It speaks Braze's request and response shapes: the bearer REST API key (401 `{"message": "Invalid API
key: …"}` otherwise), at most 75 attributes objects per track request and 50 `external_ids` per delete
request (400 otherwise), `201 {"message": "success", "attributes_processed": n}`, and per-object errors
as `201 {"message": "success", "errors": [{"type", "input_array": "attributes", "index"}]}` (a 400 with
the same `errors` when no object of the request is valid).

It keeps what Braze would hold (a profile per `external_id`: attributes merged, null removing one,
subscription group states), every request's attributes objects and external ids, and the maximum number
of requests in flight. Faults: `reject(external_id)` makes every object of that user fail with a
per-object error; `fail_next(kind, times)` answers the next requests with a 429 and rate-limit headers,
a 5xx, a body that is not JSON, or no answer until `hang_seconds`; `fault_rate` answers that share of the
requests with a 503 at random (seeded); `latency_s` delays every answer.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

FaultKind = Literal[
    "429",  # HTTP 429 with X-RateLimit-Limit/-Remaining/-Reset
    "5xx",  # HTTP 503 with an HTML page
    "not_json",  # HTTP 201 with an HTML page (a proxy's page): not JSON
    "hang",  # no answer until `hang_seconds` (or the server stops), then the connection closes
]
Endpoint = Literal["/users/track", "/users/delete"]

TRACK_LIMIT = 75
DELETE_LIMIT = 50
NO_VALID_DATA = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
HTML_503_BODY = "<html><body><h1>503 Service Unavailable</h1></body></html>"
HTML_201_BODY = "<html><body><h1>Please wait</h1></body></html>"


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    endpoint: Endpoint | None
    reset_at: int | None
    reset_in_s: float


@dataclass
class FakeBraze:
    """State and switches of one fake server. Read state through the methods (they lock)."""

    api_key: str = "fake-braze-rest-key"
    latency_s: float = 0.0
    hang_seconds: float = 10.0
    base_url: str = ""
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    track_requests: list[list[dict[str, Any]]] = field(default_factory=list)
    delete_requests: list[list[str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    max_in_flight: int = 0
    faults_served: int = 0
    fault_rate: float = 0.0  # the share of requests answered with a 503, at random
    # every request, faults included
    requests_by_endpoint: dict[str, int] = field(default_factory=dict)
    # ∫ in_flight dt while requests were being answered, and the first and last moments of it
    in_flight_seconds: float = 0.0
    requests_served: int = 0
    _busy_since: float | None = None
    _last_change: float = 0.0
    _busy_until: float = 0.0
    _random: random.Random = field(default_factory=lambda: random.Random(18))
    _rejected: dict[str, str] = field(default_factory=dict)
    _faults: list[_Fault] = field(default_factory=list)
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    # --- switches -----------------------------------------------------------------------------------------

    def reject(self, external_id: str, error_type: str = "'email' is not a valid email") -> None:
        """Every attributes object of `external_id` fails with a per-object error `error_type`."""
        with self._lock:
            self._rejected[external_id] = error_type

    def fail_next(
        self,
        kind: FaultKind,
        times: int = 1,
        *,
        endpoint: Endpoint | None = None,
        reset_at: int | None = None,
        reset_in_s: float = 1.0,
    ) -> None:
        """The next `times` requests (to `endpoint` only, when given) answer with `kind`. A 429 gives
        `X-RateLimit-Reset: reset_at` (epoch seconds), or now + `reset_in_s` when it is None."""
        with self._lock:
            self._faults.append(_Fault(kind, times, endpoint, reset_at, reset_in_s))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._rejected.clear()

    # --- what Braze holds ---------------------------------------------------------------------------------

    def profile(self, external_id: str) -> dict[str, Any] | None:
        with self._lock:
            profile = self.profiles.get(external_id)
            return json.loads(json.dumps(profile)) if profile is not None else None

    def tracked_objects(self) -> list[dict[str, Any]]:
        """Every attributes object received, in order (those answered with a fault excluded)."""
        with self._lock:
            return [obj for request in self.track_requests for obj in request]

    def deleted_ids(self) -> list[str]:
        with self._lock:
            return [eid for request in self.delete_requests for eid in request]

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    # --- request handling (called from handler threads) ---------------------------------------------------

    def _account(self) -> None:
        """Add the time since the last change of `in_flight` to its integral (under the lock)."""
        now = time.monotonic()
        if self._busy_since is None:
            self._busy_since = now
        else:
            self.in_flight_seconds += self._in_flight * (now - self._last_change)
        self._last_change = self._busy_until = now

    def _enter(self, endpoint: str) -> None:
        with self._lock:
            self._account()
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self.requests_by_endpoint[endpoint] = self.requests_by_endpoint.get(endpoint, 0) + 1

    def _leave(self) -> None:
        with self._lock:
            self._account()
            self._in_flight -= 1
            self.requests_served += 1

    def _next_fault(self, endpoint: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (None, endpoint):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    self.faults_served += 1
                    return fault
            if self.fault_rate and self._random.random() < self.fault_rate:
                self.faults_served += 1
                return _Fault("5xx", 1, None, None, 0.0)
        return None

    def _track(self, objects: list[Any]) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        with self._lock:
            self.track_requests.append(objects)
            for index, obj in enumerate(objects):
                external_id = obj.get("external_id") if isinstance(obj, dict) else None
                if not isinstance(external_id, str) or not external_id:
                    error = "Missing one of external_id, user_alias, braze_id, email or phone"
                    errors.append({"type": error, "input_array": "attributes", "index": index})
                    continue
                if external_id in self._rejected:
                    errors.append(
                        {
                            "type": self._rejected[external_id],
                            "input_array": "attributes",
                            "index": index,
                        }
                    )
                    continue
                if obj.get("_update_existing_only") and external_id not in self.profiles:
                    continue  # "Update Only" mode creates no profile
                _merge(self.profiles.setdefault(external_id, {}), obj)
        answer: dict[str, Any] = {
            "message": "success",
            "attributes_processed": len(objects) - len(errors),
        }
        if errors:
            answer["errors"] = errors
        return answer

    def _delete(self, external_ids: list[str]) -> dict[str, Any]:
        with self._lock:
            self.delete_requests.append(external_ids)
            deleted = 0
            for external_id in external_ids:
                if self.profiles.pop(external_id, None) is not None:
                    deleted += 1
        return {"deleted": deleted, "message": "success"}


def _merge(profile: dict[str, Any], obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        if key in ("external_id", "_update_existing_only"):
            continue
        if key == "subscription_groups":
            groups = profile.setdefault("subscription_groups", {})
            for group in value:
                groups[group["subscription_group_id"]] = group["subscription_state"]
        elif value is None:
            profile.pop(key, None)
        else:
            profile[key] = value


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return

    def _reply(
        self,
        status: int,
        body: str,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        payload = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, payload: dict[str, Any], **headers: str) -> None:
        self._reply(status, json.dumps(payload), headers=headers)

    def do_POST(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        fake._enter(self.path)
        try:
            self._answer(fake, raw)
        finally:
            fake._leave()

    def _answer(self, fake: FakeBraze, raw: bytes) -> None:
        if fake.latency_s:
            time.sleep(fake.latency_s)
        if self.path not in ("/users/track", "/users/delete"):
            self._json(404, {"message": "Not found"})
            return
        authorization = self.headers.get("Authorization", "")
        with fake._lock:
            fake.authorizations.append(authorization)
        scheme, _, key = authorization.partition(" ")
        if scheme != "Bearer" or key != fake.api_key:
            self._json(401, {"message": f"Invalid API key: {key}"})
            return
        fault = fake._next_fault(self.path)
        if fault is not None:
            self._fault(fake, fault)
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._json(400, {"message": "Invalid JSON in request body"})
            return
        if not isinstance(body, dict):
            self._json(400, {"message": "Request body must be a JSON object"})
            return
        if self.path == "/users/track":
            objects = body.get("attributes")
            if not isinstance(objects, list) or not objects:
                self._json(
                    400, {"message": "Valid data must be provided in the 'attributes' field."}
                )
                return
            if len(objects) > TRACK_LIMIT:
                self._json(400, {"message": f"Too many attributes objects (max {TRACK_LIMIT})."})
                return
            answer = fake._track(objects)
            if len(answer.get("errors", ())) == len(objects):  # no valid object: a 400
                answer["message"] = NO_VALID_DATA
                self._json(400, answer)
                return
            self._json(201, answer)
            return
        external_ids = body.get("external_ids")
        if (
            not isinstance(external_ids, list)
            or not external_ids
            or not all(isinstance(eid, str) for eid in external_ids)
        ):
            self._json(400, {"message": "'external_ids' must be an array of strings."})
            return
        if len(external_ids) > DELETE_LIMIT:
            self._json(400, {"message": f"Too many external_ids (max {DELETE_LIMIT})."})
            return
        self._json(201, fake._delete(external_ids))

    def _fault(self, fake: FakeBraze, fault: _Fault) -> None:
        if fault.kind == "429":
            reset = fault.reset_at
            if reset is None:
                reset = int(time.time() + fault.reset_in_s)
            self._json(
                429,
                {"message": "API rate limit exceeded"},
                **{
                    "X-RateLimit-Limit": "50000",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(reset),
                },
            )
        elif fault.kind == "5xx":
            self._reply(503, HTML_503_BODY, "text/html")
        elif fault.kind == "not_json":
            self._reply(201, HTML_201_BODY, "text/html")
        else:  # hang
            fake._stopping.wait(fake.hang_seconds)
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, fake: FakeBraze, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fake = fake


@contextmanager
def running_fake_braze(**settings: Any) -> Iterator[FakeBraze]:
    """Start a fake Braze on a free local port; `settings` are `FakeBraze` fields."""
    fake = FakeBraze(**settings)
    server = _Server(fake)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-braze", daemon=True
    )
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        fake._stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main() -> None:
    """`python -m tests.support.fake_braze [--latency S] [--fault-rate F] [--port N] [--api-key K]
    [--stats-file PATH]`: serve until interrupted (SIGINT or SIGTERM), printing the base URL first (for
    benchmarks that keep the fake out of the measured process)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=FakeBraze.api_key)
    parser.add_argument(
        "--stats-file", help="write max in flight and requests per endpoint there at exit"
    )
    arguments = parser.parse_args()
    fake = FakeBraze(
        latency_s=arguments.latency, fault_rate=arguments.fault_rate, api_key=arguments.api_key
    )
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


def write_stats(fake: FakeBraze, path: str) -> None:
    """The figures a benchmark reads back, in the fake Acoustic's shape: the most requests ever in
    flight at once, the requests per endpoint (`calls`), the faults served, the mean in flight, and the
    users of each track request answered."""
    with fake._lock:
        stats = {
            "max_in_flight": fake.max_in_flight,
            "calls": dict(fake.requests_by_endpoint),
            "faults_served": fake.faults_served,
            "users_tracked": sum(len(request) for request in fake.track_requests),
            "track_request_sizes": [len(request) for request in fake.track_requests],
            "mean_in_flight": fake.in_flight_seconds
            / max(fake._busy_until - (fake._busy_since or 0.0), 1e-9),
            "mean_request_s": fake.in_flight_seconds / max(fake.requests_served, 1),
        }
    with open(path, "w", encoding="utf-8") as file:
        json.dump(stats, file)


if __name__ == "__main__":
    main()
