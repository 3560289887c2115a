"""`HttpxBrazeGateway` against an in-process Braze (httpx.MockTransport): batches, errors, rate limits."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from ctms_adapters.braze import HttpxBrazeGateway, safe_reason
from ctms_core.domain.braze import BrazeUser
from ctms_core.ports.braze import BrazeFailure, BrazeGateway, DeleteResult, TrackResult

BASE = "https://rest.iad-01.braze.com"
API_KEY = "braze-rest-key-123"
NOW = 1_760_000_000.0

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def user(number: int) -> BrazeUser:
    email_id = uuid.UUID(int=number)
    return BrazeUser(
        email_id=email_id,
        attributes={
            "external_id": str(email_id),
            "_update_existing_only": False,
            "first_name": "A",
        },
        digests={},
    )


def ids(*numbers: int) -> tuple[str, ...]:
    return tuple(str(uuid.UUID(int=number)) for number in numbers)


def success(**extra: Any) -> httpx.Response:
    return httpx.Response(201, json={"message": "success", **extra})


@dataclass
class ScriptedBraze:
    """An in-process Braze: records request bodies; replies come from `replies`, else success."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.replies:
            return success()
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


@dataclass
class Sleeper:
    """A controllable clock: `sleep` records the delay and moves `now` forward when the sleeper wakes,
    after letting the other tasks run (a hundredth of a real second) at the time it fell asleep."""

    now: float = NOW
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        wake_at = self.now + seconds
        await asyncio.sleep(0.01)
        self.now = max(self.now, wake_at)


def gateway(braze: ScriptedBraze, sleeper: Sleeper | None = None, **options: Any) -> BrazeGateway:
    sleeper = sleeper or Sleeper()
    client = httpx.AsyncClient(transport=httpx.MockTransport(braze))
    return HttpxBrazeGateway(
        client,
        base_url=BASE,
        api_key=API_KEY,
        wall_clock=sleeper.clock,
        sleep=sleeper.sleep,
        **options,
    )


async def test_track_posts_the_attributes_objects_with_the_bearer_key() -> None:
    braze = ScriptedBraze()

    result = await gateway(braze).track([user(1), user(2)])

    assert result == TrackResult(succeeded=ids(1, 2), requests=1)
    [request] = braze.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/users/track"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"attributes": [user(1).attributes, user(2).attributes]}


async def test_track_sends_at_most_75_users_per_request() -> None:
    braze = ScriptedBraze()

    result = await gateway(braze, max_concurrent_requests=1).track([user(n) for n in range(1, 152)])

    assert [len(body["attributes"]) for body in braze.bodies()] == [75, 75, 1]
    assert result.succeeded == ids(*range(1, 152))
    assert result.requests == 3


async def test_a_201_with_errors_fails_only_the_users_it_names_with_a_redacted_reason() -> None:
    braze = ScriptedBraze(
        replies=[
            success(
                errors=[
                    {
                        "type": "'email' is not a valid address: bad@@example.com",
                        "input_array": "attributes",
                        "index": 1,
                    }
                ]
            )
        ]
    )

    result = await gateway(braze).track([user(1), user(2), user(3)])

    assert result.succeeded == ids(1, 3)
    assert result.failed == (
        BrazeFailure(
            external_id=ids(2)[0],
            kind="rejected",
            reason="'email' is not a valid address: <address>",
        ),
    )


async def test_a_400_naming_every_object_rejects_each_user_for_its_own_reason() -> None:
    braze = ScriptedBraze(
        replies=[
            httpx.Response(
                400,
                json={
                    "message": "Valid data must be provided in the 'attributes' field.",
                    "errors": [
                        {"type": "'email' is not valid", "input_array": "attributes", "index": 0},
                        {"type": "'country' is not valid", "input_array": "attributes", "index": 1},
                    ],
                },
            ),
            httpx.Response(
                400,
                json={
                    "message": "Valid data must be provided in the 'attributes' field.",
                    "errors": [
                        {"type": "'email' is not valid", "input_array": "attributes", "index": 0}
                    ],
                },
            ),
        ]
    )

    every = await gateway(braze).track([user(1), user(2)])
    some = await gateway(braze).track([user(1), user(2)])

    assert [(f.external_id, f.kind, f.reason) for f in every.failed] == [
        (ids(1)[0], "rejected", "'email' is not valid"),
        (ids(2)[0], "rejected", "'country' is not valid"),
    ]
    # A 400 that does not account for every object refuses the whole request.
    assert {(f.kind, f.reason) for f in some.failed} == {
        ("refused", "/users/track answered HTTP 400")
    }


async def test_an_error_braze_does_not_attribute_to_one_user_fails_the_whole_request() -> None:
    braze = ScriptedBraze(replies=[success(errors=[{"type": "oops", "index": 7}])])

    result = await gateway(braze).track([user(1), user(2)])

    assert result.succeeded == ()
    assert {f.kind for f in result.failed} == {"unavailable"}
    assert [f.external_id for f in result.failed] == list(ids(1, 2))


async def test_a_429_waits_until_the_reset_then_resends_the_same_request() -> None:
    sleeper = Sleeper()
    limited = httpx.Response(
        429, json={"message": "rate limited"}, headers={"X-RateLimit-Reset": str(int(NOW) + 12)}
    )
    braze = ScriptedBraze(replies=[limited, success()])

    result = await gateway(braze, sleeper).track([user(1)])

    assert sleeper.slept == [12.0]
    assert result == TrackResult(succeeded=ids(1), requests=2)
    assert braze.bodies()[0] == braze.bodies()[1]


async def test_a_429_pauses_the_other_requests_of_the_gateway_until_the_reset() -> None:
    sleeper = Sleeper()
    sent_at: list[float] = []
    limited = httpx.Response(429, headers={"X-RateLimit-Reset": str(int(NOW) + 10)})
    replies: list[httpx.Response] = [limited, success(), success()]

    def answer(request: httpx.Request) -> httpx.Response:
        sent_at.append(sleeper.now)
        return replies.pop(0)

    braze = ScriptedBraze(replies=[answer, answer, answer])

    result = await gateway(braze, sleeper, max_concurrent_requests=1).track(
        [user(n) for n in range(1, 77)]
    )

    # The second batch, queued behind the first, is not sent before the reset the first one met.
    assert sent_at == [NOW, NOW + 10, NOW + 10]
    assert sleeper.slept == [10.0]
    assert len(result.succeeded) == 76
    assert result.requests == 3


async def test_a_429_without_a_reset_uses_retry_after() -> None:
    sleeper = Sleeper()
    braze = ScriptedBraze(replies=[httpx.Response(429, headers={"Retry-After": "3"}), success()])

    await gateway(braze, sleeper).track([user(1)])

    assert sleeper.slept == [3.0]


async def test_a_429_whose_reset_is_past_still_waits_a_second() -> None:
    sleeper = Sleeper()
    braze = ScriptedBraze(
        replies=[httpx.Response(429, headers={"X-RateLimit-Reset": str(int(NOW) - 30)}), success()]
    )

    await gateway(braze, sleeper).track([user(1)])

    assert sleeper.slept == [1.0]


async def test_a_429_resetting_beyond_the_wait_budget_fails_the_request_as_rate_limited() -> None:
    sleeper = Sleeper()
    reset = {"X-RateLimit-Reset": str(int(NOW) + 20)}
    braze = ScriptedBraze(replies=[httpx.Response(429, headers=reset)] * 100)

    result = await gateway(braze, sleeper, max_rate_limit_wait_s=50).track([user(1)])

    # 20 s until the reset; Braze still answers 429 with that reset, now past: 1 s each time, until
    # the budget cannot cover the next wait.
    assert sleeper.slept == [20.0] + [1.0] * 30
    assert result.requests == 32
    assert result.succeeded == ()
    [failure] = result.failed
    assert failure.kind == "rate_limited"
    assert "429" in failure.reason


async def test_a_429_further_than_the_budget_is_not_waited_for() -> None:
    sleeper = Sleeper()
    reset = {"X-RateLimit-Reset": str(int(NOW) + 3600)}
    braze = ScriptedBraze(replies=[httpx.Response(429, headers=reset)])

    result = await gateway(braze, sleeper, max_rate_limit_wait_s=60).track([user(1)])

    assert sleeper.slept == []
    assert [f.kind for f in result.failed] == ["rate_limited"]
    assert result.requests == 1


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(500, text="<html>oops</html>"),
        httpx.Response(503, json={"message": "unavailable"}),
        httpx.Response(201, text="<html>proxy page</html>"),
        httpx.Response(201, json=["not", "an", "object"]),
        httpx.Response(201, json={"message": "Valid data must be provided"}),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
    ],
    ids=["500", "503", "not-json", "json-array", "no-success", "timeout", "connect-error"],
)
async def test_no_usable_answer_fails_the_whole_batch_as_unavailable(reply: Reply) -> None:
    braze = ScriptedBraze(replies=[reply])

    result = await gateway(braze, max_concurrent_requests=1).track([user(n) for n in range(1, 77)])

    assert result.succeeded == ids(76)  # the second request, answered normally
    assert {f.kind for f in result.failed} == {"unavailable"}
    assert [f.external_id for f in result.failed] == list(ids(*range(1, 76)))


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "refused"), (401, "unauthorized"), (403, "unauthorized"), (404, "refused")],
)
async def test_another_4xx_fails_the_whole_batch_without_echoing_the_body(
    status: int, kind: str
) -> None:
    braze = ScriptedBraze(
        replies=[httpx.Response(status, json={"message": f"Invalid API key: {API_KEY}"})]
    )

    result = await gateway(braze).track([user(1)])

    [failure] = result.failed
    assert failure.kind == kind
    assert failure.reason == f"/users/track answered HTTP {status}"


async def test_delete_posts_external_ids_50_per_request() -> None:
    braze = ScriptedBraze()
    external_ids = ids(*range(1, 102))

    result = await gateway(braze, max_concurrent_requests=1).delete(external_ids)

    assert all(str(r.url) == f"{BASE}/users/delete" for r in braze.requests)
    assert all(r.headers["Authorization"] == f"Bearer {API_KEY}" for r in braze.requests)
    assert braze.bodies() == [
        {"external_ids": list(external_ids[0:50])},
        {"external_ids": list(external_ids[50:100])},
        {"external_ids": list(external_ids[100:])},
    ]
    assert result == DeleteResult(deleted=external_ids, requests=3)


async def test_delete_failures_fail_the_users_of_that_request_only() -> None:
    braze = ScriptedBraze(replies=[success(deleted=50), httpx.Response(502)])
    external_ids = ids(*range(1, 61))

    result = await gateway(braze, max_concurrent_requests=1).delete(external_ids)

    assert result.deleted == external_ids[:50]
    assert [f.external_id for f in result.failed] == list(external_ids[50:])
    assert {f.kind for f in result.failed} == {"unavailable"}


async def test_delete_waits_for_a_429_reset_like_track() -> None:
    sleeper = Sleeper()
    limited = httpx.Response(429, headers={"X-RateLimit-Reset": str(int(NOW) + 5)})
    braze = ScriptedBraze(replies=[limited, success(deleted=1)])

    result = await gateway(braze, sleeper).delete(ids(1))

    assert sleeper.slept == [5.0]
    assert result == DeleteResult(deleted=ids(1), requests=2)


async def test_nothing_to_send_sends_nothing() -> None:
    braze = ScriptedBraze()

    assert await gateway(braze).track([]) == TrackResult()
    assert await gateway(braze).delete([]) == DeleteResult()
    assert braze.requests == []


def test_safe_reason_removes_addresses_and_control_characters_and_bounds_the_length() -> None:
    assert safe_reason("user a.b+c@example.org\nrejected") == "user <address> rejected"
    assert len(safe_reason("x" * 500)) == 200
