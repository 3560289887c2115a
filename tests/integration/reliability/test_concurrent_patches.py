"""Concurrent PATCHes of one contact lose no update (docs/contract.md §16.3, issue #9).

20 clients each send 50 PATCHes to the same contact against PostgreSQL, client `i` toggling only the
newsletter `n-i`; other writers change distinct e-mail fields, `amo` and `mofo`. Every request must
succeed, and the final contact must hold every writer's last change. A race between two PATCHes is
also forced (their reads held until both have read), so the retry it causes is certain, not luck.
"""

from __future__ import annotations

import asyncio
import uuid
from types import TracebackType
from typing import Any, Self, cast

import httpx

from ctms_core.ports.repositories import ContactRepository, StoredContact, UnitOfWork
from tests.support.postgres_app import postgres_app

CLIENTS = 20
PATCHES_PER_CLIENT = 50
TEST_BOUND_SECONDS = 120


def _counter(exposition: str, name: str) -> float:
    """The value of an unlabelled sample of a Prometheus text exposition."""
    (value,) = (line.split()[1] for line in exposition.splitlines() if line.startswith(f"{name} "))
    return float(value)


def newsletter(client: int) -> str:
    return f"n-{client:02d}"


def subscribed_after(client: int, step: int) -> bool:
    """What client `client` sets at `step`: alternating, ending on a value that differs by client."""
    return (step + client) % 2 == 0


async def test_twenty_clients_patching_one_contact_lose_no_update(database_url: str) -> None:
    """20 x 50 PATCHes toggling one newsletter each: no error, every client's last value stored."""
    async with postgres_app(database_url, db_pool_size=5, db_max_overflow=5) as app:
        token = await app.token(await app.create_client(f"concurrency-{uuid.uuid4().hex[:8]}"))
        headers = {"Authorization": f"Bearer {token}"}
        created = await app.http.post(
            "/ctms",
            headers=headers,
            json={"email": {"primary_email": f"busy-{uuid.uuid4().hex[:12]}@example.com"}},
        )
        assert created.status_code == 201, created.text
        email_id = created.json()["email"]["email_id"]
        failures: list[tuple[int, int, int, str]] = []

        async def client(number: int) -> None:
            for step in range(PATCHES_PER_CLIENT):
                response = await app.http.patch(
                    f"/ctms/{email_id}",
                    headers=headers,
                    json={
                        "newsletters": [
                            {
                                "name": newsletter(number),
                                "subscribed": subscribed_after(number, step),
                            }
                        ]
                    },
                )
                if response.status_code != 200:
                    failures.append((number, step, response.status_code, response.text[:200]))

        async with asyncio.timeout(TEST_BOUND_SECONDS):
            await asyncio.gather(*(client(number) for number in range(CLIENTS)))

        assert failures == []
        final = await app.http.get(f"/ctms/{email_id}", headers=headers)
        assert final.status_code == 200, final.text
        stored = {item["name"]: item["subscribed"] for item in final.json()["newsletters"]}
        # A client whose first PATCH unsubscribes an unknown name creates nothing (docs/contract.md §4.4), but every
        # client's later PATCHes subscribe it, so every name exists with its last value.
        expected = {
            newsletter(number): subscribed_after(number, PATCHES_PER_CLIENT - 1)
            for number in range(CLIENTS)
        }
        assert stored == expected


class ReadsMeet:
    """Holds each of the first `count` contact reads until all of them have read: the PATCHes making
    them all read the same version of the contact, a race that only one of them can win."""

    def __init__(self, count: int) -> None:
        self._barrier = asyncio.Barrier(count)
        self._waiting = count

    async def arrive(self) -> None:
        if self._waiting > 0:
            self._waiting -= 1
            await self._barrier.wait()

    def wrap(self, inner: UnitOfWork) -> UnitOfWork:
        return cast(UnitOfWork, _MeetingUnitOfWork(inner, self))


class _MeetingContacts:
    def __init__(self, inner: ContactRepository, meeting: ReadsMeet) -> None:
        self._inner = inner
        self._meeting = meeting

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get_versioned(
        self, email_id: uuid.UUID, *, for_update: bool = False
    ) -> StoredContact | None:
        stored = await self._inner.get_versioned(email_id, for_update=for_update)
        await self._meeting.arrive()
        return stored


class _MeetingUnitOfWork:
    """The storage's unit of work, its contact reads going through `ReadsMeet`."""

    def __init__(self, inner: UnitOfWork, meeting: ReadsMeet) -> None:
        self._inner = inner
        self._meeting = meeting

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        self.contacts = _MeetingContacts(self._inner.contacts, self._meeting)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, traceback)


async def test_a_patch_that_lost_the_race_starts_over_and_is_counted(database_url: str) -> None:
    """Two PATCHes forced to read the same version: one saves, the other's save is refused and it
    starts over from a fresh read, once; both changes are kept and the retry is counted."""
    meeting = ReadsMeet(2)
    async with postgres_app(database_url, wrap_uow=meeting.wrap) as app:
        token = await app.token(await app.create_client(f"race-{uuid.uuid4().hex[:8]}"))
        headers = {"Authorization": f"Bearer {token}"}
        created = await app.http.post(
            "/ctms",
            headers=headers,
            json={"email": {"primary_email": f"race-{uuid.uuid4().hex[:12]}@example.com"}},
        )
        assert created.status_code == 201, created.text
        email_id = created.json()["email"]["email_id"]
        before = _counter((await app.http.get("/metrics")).text, "ctms_contact_write_retries_total")

        async with asyncio.timeout(TEST_BOUND_SECONDS):
            first, second = await asyncio.gather(
                *(
                    app.http.patch(
                        f"/ctms/{email_id}",
                        headers=headers,
                        json={"newsletters": [{"name": newsletter(number)}]},
                    )
                    for number in (1, 2)
                )
            )
        assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
        final = (await app.http.get(f"/ctms/{email_id}", headers=headers)).json()
        assert sorted(item["name"] for item in final["newsletters"]) == ["n-01", "n-02"]
        after = _counter((await app.http.get("/metrics")).text, "ctms_contact_write_retries_total")
        assert after - before == 1


async def test_concurrent_patches_of_distinct_email_fields_and_groups_lose_no_update(
    database_url: str,
) -> None:
    """Writers of different e-mail fields, of `amo` and of `mofo` interleave without losing a write."""
    writers = {
        "first_name": lambda step: {"email": {"first_name": f"first-{step}"}},
        "last_name": lambda step: {"email": {"last_name": f"last-{step}"}},
        "mailing_country": lambda step: {"email": {"mailing_country": f"c{step}"}},
        "amo": lambda step: {"amo": {"display_name": f"amo-{step}"}},
        "mofo": lambda step: {"mofo": {"mofo_contact_id": f"mofo-{step}"}},
    }
    steps = 40
    async with postgres_app(database_url) as app:
        token = await app.token(await app.create_client(f"fields-{uuid.uuid4().hex[:8]}"))
        headers = {"Authorization": f"Bearer {token}"}
        created = await app.http.post(
            "/ctms",
            headers=headers,
            json={"email": {"primary_email": f"fields-{uuid.uuid4().hex[:12]}@example.com"}},
        )
        assert created.status_code == 201, created.text
        email_id = created.json()["email"]["email_id"]
        statuses: list[httpx.Response] = []

        async def writer(name: str) -> None:
            for step in range(steps):
                response = await app.http.patch(
                    f"/ctms/{email_id}", headers=headers, json=writers[name](step)
                )
                if response.status_code != 200:
                    statuses.append(response)

        async with asyncio.timeout(TEST_BOUND_SECONDS):
            await asyncio.gather(*(writer(name) for name in writers))
        assert [(r.status_code, r.text[:200]) for r in statuses] == []
        final = (await app.http.get(f"/ctms/{email_id}", headers=headers)).json()
        last = steps - 1
        assert final["email"]["first_name"] == f"first-{last}"
        assert final["email"]["last_name"] == f"last-{last}"
        assert final["email"]["mailing_country"] == f"c{last}"
        assert final["amo"]["display_name"] == f"amo-{last}"
        assert final["mofo"]["mofo_contact_id"] == f"mofo-{last}"
