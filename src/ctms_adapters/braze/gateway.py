"""`BrazeGateway` over httpx: batching, the bearer key, and the interpretation of Braze's answers.

Answers and what they mean for the users of one request (docs/braze.md, "Errors and retries"):

* 2xx with a JSON object whose `message` is `success`: every user succeeded, except those an entry of
  `errors` names by `index` in the `attributes` array (`rejected`);
* 429: wait until `X-RateLimit-Reset` (epoch seconds), then resend the same request; when the reset is
  further away than the wait budget left, the request's users fail as `rate_limited`;
* 5xx, a timeout, a connection error, or a body that is not the JSON object Braze answers with: every
  user of the request fails as `unavailable`;
* 400 whose `errors` name every object by index (Braze's answer when no object is valid): each user
  fails as `rejected`, for its own reason;
* 401 or 403 (invalid key, or one without the endpoint's permission): every user of the request fails
  as `unauthorized`;
* any other status: every user of the request fails as `refused`.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import httpx
import msgspec

from ctms_core.domain.braze import BrazeUser
from ctms_core.ports.braze import (
    DELETE_BATCH_SIZE,
    TRACK_BATCH_SIZE,
    BrazeFailure,
    BrazeFailureKind,
    DeleteResult,
    TrackResult,
)

__all__ = ["HttpxBrazeGateway", "safe_reason"]

# Waited after a 429 that gives no usable reset, and at least after any 429 (a reset already past, as a
# skewed clock would give, must not turn into a burst of immediate retries).
_MIN_RATE_LIMIT_WAIT_S: Final = 1.0
_MAX_REASON_LENGTH: Final = 200
_ADDRESS: Final = re.compile(r"[^\s\"'<>(),;:]+@[^\s\"'<>(),;:]+")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")


def safe_reason(text: str) -> str:
    """`text` fit for a log line or a stored error: every e-mail address replaced by `<address>`, control
    characters by a space, at most `_MAX_REASON_LENGTH` characters."""
    redacted = _CONTROL.sub(" ", _ADDRESS.sub("<address>", text)).strip()
    if len(redacted) > _MAX_REASON_LENGTH:
        return redacted[: _MAX_REASON_LENGTH - 1] + "…"
    return redacted


class _Answer(msgspec.Struct, frozen=True, kw_only=True):
    """What one request (its 429 retries included) came to: a JSON object, or why there is none."""

    payload: dict[str, Any] | None = None
    failure: BrazeFailureKind | None = None
    reason: str = ""
    requests: int = 0


class HttpxBrazeGateway:
    """`BrazeGateway` port for Braze's REST API.

    `base_url` is the workspace's REST endpoint (`https://rest.<instance>.braze.com`), `api_key` a REST
    API key with the `users.track` and `users.delete` permissions. The client's lifetime belongs to the
    caller (a container resource). At most `max_concurrent_requests` requests of one gateway are in
    flight at a time; batches of one call are sent concurrently up to that limit.

    `wall_clock` (epoch seconds, as `X-RateLimit-Reset` is) and `sleep` are injectable so tests control
    time. A request waits for rate-limit resets `max_rate_limit_wait_s` in all, at most.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        timeout: float = 10.0,
        max_concurrent_requests: int = 4,
        max_rate_limit_wait_s: float = 60.0,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_concurrent_requests < 1:
            raise ValueError("max_concurrent_requests must be at least 1")
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._timeout = httpx.Timeout(timeout)
        self._slots = asyncio.Semaphore(max_concurrent_requests)
        self._max_rate_limit_wait_s = max_rate_limit_wait_s
        self._wall_clock = wall_clock
        self._sleep = sleep
        # Wall-clock time before which no request is sent: the reset of the last 429.
        self._paused_until = 0.0

    @property
    def base_url(self) -> str:
        return self._base_url

    # --- port ---------------------------------------------------------------------------------------------

    async def track(self, users: Sequence[BrazeUser]) -> TrackResult:
        batches = [users[i : i + TRACK_BATCH_SIZE] for i in range(0, len(users), TRACK_BATCH_SIZE)]
        outcomes = await asyncio.gather(*(self._track_batch(batch) for batch in batches))
        succeeded: list[str] = []
        failed: list[BrazeFailure] = []
        requests = 0
        for batch_succeeded, batch_failed, batch_requests in outcomes:
            succeeded.extend(batch_succeeded)
            failed.extend(batch_failed)
            requests += batch_requests
        return TrackResult(succeeded=tuple(succeeded), failed=tuple(failed), requests=requests)

    async def delete(self, external_ids: Sequence[str]) -> DeleteResult:
        batches = [
            external_ids[i : i + DELETE_BATCH_SIZE]
            for i in range(0, len(external_ids), DELETE_BATCH_SIZE)
        ]
        answers = await asyncio.gather(
            *(self._post("/users/delete", {"external_ids": list(batch)}) for batch in batches)
        )
        deleted: list[str] = []
        failed: list[BrazeFailure] = []
        for batch, answer in zip(batches, answers, strict=True):
            if answer.failure is None:
                deleted.extend(batch)
            else:
                failed.extend(_fail_all(batch, answer.failure, answer.reason))
        return DeleteResult(
            deleted=tuple(deleted),
            failed=tuple(failed),
            requests=sum(answer.requests for answer in answers),
        )

    # --- /users/track -------------------------------------------------------------------------------------

    async def _track_batch(
        self, batch: Sequence[BrazeUser]
    ) -> tuple[list[str], list[BrazeFailure], int]:
        external_ids = [user.external_id for user in batch]
        answer = await self._post(
            "/users/track", {"attributes": [user.attributes for user in batch]}
        )
        if answer.failure == "refused" and answer.payload is not None:
            # A 400 listing an error for every object (Braze's answer when none is valid): each user
            # is rejected for its own reason.
            rejected = _rejected_by_index(answer.payload.get("errors"), len(batch))
            if rejected is not None and len(rejected) == len(batch):
                failed = [
                    BrazeFailure(external_id=external_ids[index], kind="rejected", reason=reason)
                    for index, reason in sorted(rejected.items())
                ]
                return [], failed, answer.requests
        if answer.failure is not None or answer.payload is None:
            failure = answer.failure or "unavailable"
            return [], _fail_all(external_ids, failure, answer.reason), answer.requests
        rejected = _rejected_by_index(answer.payload.get("errors"), len(batch))
        if rejected is None:
            reason = "Braze listed an error it did not attribute to one user of the request"
            return [], _fail_all(external_ids, "unavailable", reason), answer.requests
        succeeded = [eid for index, eid in enumerate(external_ids) if index not in rejected]
        failed = [
            BrazeFailure(external_id=external_ids[index], kind="rejected", reason=reason)
            for index, reason in sorted(rejected.items())
        ]
        return succeeded, failed, answer.requests

    # --- one request --------------------------------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any]) -> _Answer:
        """POST `body` until Braze answers something other than a 429 or the wait budget is spent.

        A 429 pauses every request of this gateway until its reset, not only the one that met it: the
        rate limit is the workspace's, so the others would meet it too.
        """
        content = msgspec.json.encode(body)
        waited = 0.0
        requests = 0
        while True:
            async with self._slots:
                pause = self._paused_until - self._wall_clock()
                if pause > 0:
                    if waited + pause > self._max_rate_limit_wait_s:
                        return _rate_limited(path, pause, self._max_rate_limit_wait_s, requests)
                    await self._sleep(pause)
                    waited += pause
                requests += 1
                try:
                    response = await self._client.post(
                        f"{self._base_url}{path}",
                        content=content,
                        headers=self._headers,
                        timeout=self._timeout,
                    )
                except httpx.TimeoutException as error:
                    return _failure(
                        "unavailable", f"{path} timed out: {type(error).__name__}", requests
                    )
                except httpx.HTTPError as error:
                    return _failure(
                        "unavailable", f"{path} unreachable: {type(error).__name__}", requests
                    )
            status = response.status_code
            if status == 429:
                delay = self._rate_limit_delay(response.headers)
                if waited + delay > self._max_rate_limit_wait_s:
                    return _rate_limited(path, delay, self._max_rate_limit_wait_s, requests)
                self._paused_until = max(self._paused_until, self._wall_clock() + delay)
                continue
            if 200 <= status < 300:
                return _success_payload(path, status, response.content, requests)
            if status in (401, 403):
                return _failure("unauthorized", f"{path} answered HTTP {status}", requests)
            if 400 <= status < 500:
                refused = _failure("refused", f"{path} answered HTTP {status}", requests)
                if status == 400:  # every object invalid: its `errors` say why, by index
                    return _Answer(
                        payload=_json_object(response.content),
                        failure=refused.failure,
                        reason=refused.reason,
                        requests=requests,
                    )
                return refused
            return _failure(
                "unavailable", f"{path} answered HTTP {status}", requests
            )  # 5xx, 1xx, 3xx

    def _rate_limit_delay(self, headers: httpx.Headers) -> float:
        """Seconds until `X-RateLimit-Reset` (epoch seconds); else `X-RateLimit-Retry-After` or
        `Retry-After` (seconds); never less than `_MIN_RATE_LIMIT_WAIT_S`."""
        reset = _number(headers.get("X-RateLimit-Reset"))
        if reset is not None:
            return max(reset - self._wall_clock(), _MIN_RATE_LIMIT_WAIT_S)
        for name in ("X-RateLimit-Retry-After", "Retry-After"):
            seconds = _number(headers.get(name))
            if seconds is not None:
                return max(seconds, _MIN_RATE_LIMIT_WAIT_S)
        return _MIN_RATE_LIMIT_WAIT_S


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _rate_limited(path: str, wait: float, budget: float, requests: int) -> _Answer:
    reason = (
        f"{path} answered HTTP 429 and resets in {wait:.0f} s, beyond the {budget:.0f} s "
        "the gateway waits"
    )
    return _failure("rate_limited", reason, requests)


def _failure(kind: BrazeFailureKind, reason: str, requests: int) -> _Answer:
    return _Answer(failure=kind, reason=safe_reason(reason), requests=requests)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    return payload if isinstance(payload, dict) else None


def _success_payload(path: str, status: int, body: bytes, requests: int) -> _Answer:
    payload = _json_object(body)
    if payload is None:
        return _failure(
            "unavailable",
            f"{path} answered HTTP {status} with a body that is not a JSON object",
            requests,
        )
    if payload.get("message") != "success":
        return _failure("unavailable", f"{path} answered HTTP {status} without success", requests)
    return _Answer(payload=payload, requests=requests)


def _rejected_by_index(errors: object, batch_size: int) -> dict[int, str] | None:
    """Index in the request's `attributes` → the redacted error `type` Braze gave for it; None when an
    error cannot be attributed to one attributes object (then no user of the request can be trusted)."""
    if errors is None:
        return {}
    if not isinstance(errors, list):
        return None
    rejected: dict[int, str] = {}
    for error in errors:
        if not isinstance(error, dict):
            return None
        if error.get("input_array", "attributes") != "attributes":
            continue  # events or purchases: CTMS sends none
        index = error.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < batch_size:
            return None
        kind = error.get("type")
        detail = kind if isinstance(kind, str) and kind else "no reason given"
        previous = rejected.get(index)
        rejected[index] = safe_reason(detail if previous is None else f"{previous}; {detail}")
    return rejected


def _fail_all(
    external_ids: Sequence[str], kind: BrazeFailureKind, reason: str
) -> list[BrazeFailure]:
    return [BrazeFailure(external_id=eid, kind=kind, reason=reason) for eid in external_ids]
