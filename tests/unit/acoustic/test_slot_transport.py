"""`SlotTransport`: one connection pool per request in flight, handed back when the response closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from ctms_adapters.acoustic import SlotTransport


class StreamedBody(httpx.AsyncByteStream):
    """A body read from the connection as it arrives (not known in full up front), as real
    connections answer; it counts its closes."""

    def __init__(self, content: bytes) -> None:
        self._content = content
        self.closed = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._content

    async def aclose(self) -> None:
        self.closed += 1


class Slots:
    """Sub-transports that record which one served each request and answer when released."""

    def __init__(self) -> None:
        self.served: list[tuple[int, str]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.in_flight = 0
        self.most_in_flight = 0
        self.count = 0
        self.bodies: list[StreamedBody] = []

    def factory(self) -> httpx.AsyncBaseTransport:
        number = self.count
        self.count += 1

        async def handle(request: httpx.Request) -> httpx.Response:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                if request.url.path == "/fail":
                    raise httpx.ConnectError("refused", request=request)
                await self.release.wait()
                self.served.append((number, request.url.path))
                body = StreamedBody(f"slot {number} {request.url.path}".encode())
                self.bodies.append(body)
                return httpx.Response(200, stream=body)
            finally:
                self.in_flight -= 1

        return httpx.MockTransport(handle)


async def test_requests_in_flight_at_once_use_different_slots_and_get_their_bodies() -> None:
    slots = Slots()
    slots.release.clear()
    async with httpx.AsyncClient(
        transport=SlotTransport(3, transport_factory=slots.factory)
    ) as client:
        requests = [asyncio.create_task(client.get(f"http://acoustic.test/{n}")) for n in range(3)]
        await asyncio.sleep(0.01)
        slots.release.set()
        responses = await asyncio.gather(*requests)
    assert sorted(number for number, _ in slots.served) == [0, 1, 2]
    for response in responses:
        number, path = response.text.split(" ", 1)[1].split(" ")
        assert (int(number), path) in slots.served


async def test_more_requests_than_slots_wait_for_a_closed_response_and_all_complete() -> None:
    slots = Slots()
    async with httpx.AsyncClient(
        transport=SlotTransport(2, transport_factory=slots.factory)
    ) as client:
        responses = await asyncio.gather(
            *(client.get(f"http://acoustic.test/{n}") for n in range(10))
        )
    assert [response.status_code for response in responses] == [200] * 10
    assert slots.most_in_flight <= 2
    assert [body.closed for body in slots.bodies] == [1] * 10
    assert sorted(path for _, path in slots.served) == sorted(f"/{n}" for n in range(10))


async def test_a_failed_request_gives_its_slot_back() -> None:
    slots = Slots()
    async with httpx.AsyncClient(
        transport=SlotTransport(1, transport_factory=slots.factory)
    ) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("http://acoustic.test/fail")
        response = await client.get("http://acoustic.test/next", timeout=1)
    assert response.text == "slot 0 /next"


async def test_a_request_waits_for_a_slot_at_most_its_pool_timeout() -> None:
    slots = Slots()
    slots.release.clear()
    transport = SlotTransport(1, transport_factory=slots.factory)
    async with httpx.AsyncClient(transport=transport) as client:
        holder = asyncio.create_task(client.get("http://acoustic.test/holder"))
        await asyncio.sleep(0.01)
        with pytest.raises(httpx.PoolTimeout):
            await client.get("http://acoustic.test/late", timeout=httpx.Timeout(5, pool=0.05))
        slots.release.set()
        assert (await holder).status_code == 200


async def test_a_response_read_in_full_already_gives_its_slot_back_at_once() -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"known in full")

    transport = SlotTransport(1, transport_factory=lambda: httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            response = await client.get("http://acoustic.test/", timeout=1)
            assert response.text == "known in full"


def test_a_transport_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        SlotTransport(0)
