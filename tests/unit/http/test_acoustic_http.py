"""The HTTP side of the Acoustic sync: `/acoustic_configuration`, the heartbeat's backlog block, and the
`ctms_pending_acoustic_sync_total` metric (docs/contract.md §9.1, §10)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.http_harness import Api, RunApi, make_settings
from tests.samples import sample
from tests.support.sync_queue import claim_queued

NOW = datetime(2024, 1, 1, tzinfo=UTC)


async def _queue(api: Api, count: int, *, failures: int = 0) -> None:
    """`count` rows in the sync queue, the first `failures` of them failed once."""
    async with api.unit_of_work() as uow:
        for index in range(count):
            email_id = uuid.uuid4()
            await uow.sync_queue.enqueue(email_id, NOW)
            if index < failures:
                (item,) = await claim_queued(uow, limit=1, now=NOW, lease_until=NOW)
                await uow.sync_queue.fail(
                    "acoustic", item.email_id, item.version, "boom", NOW, now=NOW
                )
        await uow.commit()


def _pending_total(text: str) -> float:
    for line in text.splitlines():
        if line.startswith("ctms_pending_acoustic_sync_total"):
            return float(line.split()[-1])
    raise AssertionError("ctms_pending_acoustic_sync_total not exposed")


async def test_acoustic_configuration_is_anonymous_and_seeded(api: Api) -> None:
    response = await api.get("/acoustic_configuration", headers={})
    assert response.status_code == 200
    body = response.json()
    assert "fxa_lang" in body["sync_fields"]["main"]
    assert body["sync_fields"]["main"] == sorted(body["sync_fields"]["main"])
    assert body["sync_fields"]["waitlist"] == ["geo", "platform"]
    assert body["newsletter_mappings"]["mozilla-rally"] == "sub_rally"
    assert len(body["newsletter_mappings"]) == 21


async def test_healthy_heartbeat_reports_the_acoustic_block(api: Api) -> None:
    response = await api.get("/__heartbeat__", headers={})
    assert response.status_code == 200
    acoustic = response.json()["database"]["acoustic"]
    assert acoustic == {
        "success": True,
        "time_ms": acoustic["time_ms"],
        "backlog": 0,
        "max_backlog": None,
        "retry_backlog": 0,
        "max_retry_backlog": None,
        "retry_limit": 6,
        "batch_limit": 20,
        "loop_min_sec": 5,
    }


async def test_heartbeat_is_503_past_the_max_backlog(running_api: RunApi) -> None:
    settings = make_settings(acoustic_max_backlog=2, acoustic_retry_limit=5, acoustic_batch_limit=7)
    async with running_api(settings) as custom:
        await _queue(custom, 2)
        healthy = await custom.get("/__heartbeat__", headers={})
        await _queue(custom, 1)
        unhealthy = await custom.get("/__heartbeat__", headers={})
    assert healthy.status_code == 200
    assert unhealthy.status_code == 503
    acoustic = unhealthy.json()["database"]["acoustic"]
    assert (acoustic["success"], acoustic["backlog"], acoustic["max_backlog"]) == (False, 3, 2)
    assert (acoustic["retry_limit"], acoustic["batch_limit"]) == (5, 7)


async def test_heartbeat_is_503_past_the_max_retry_backlog(running_api: RunApi) -> None:
    async with running_api(make_settings(acoustic_max_retry_backlog=1)) as custom:
        await _queue(custom, 3, failures=2)
        response = await custom.get("/__heartbeat__", headers={})
    assert response.status_code == 503
    assert response.json()["database"]["acoustic"]["retry_backlog"] == 2


class FailingBacklog:
    async def backlog(self) -> object:
        raise ConnectionError("backlog query failed")


async def test_heartbeat_is_503_with_null_counts_when_the_backlog_query_fails(
    running_api: RunApi,
) -> None:
    async with running_api(acoustic_admin_service=FailingBacklog()) as custom:
        response = await custom.get("/__heartbeat__", headers={})
    assert response.status_code == 503
    acoustic = response.json()["database"]["acoustic"]
    assert (acoustic["success"], acoustic["backlog"], acoustic["retry_backlog"]) == (
        False,
        None,
        None,
    )


async def test_every_contact_write_queues_the_contact_and_counts_it(api: Api) -> None:
    before = _pending_total((await api.get("/metrics", headers={})).text)
    body = sample("minimal")
    created = await api.create(body)
    email_id = created["email"]["email_id"]
    assert (await api.post("/ctms", json=body)).status_code == 200  # replay: not queued again
    assert (await api.patch(f"/ctms/{email_id}", json={})).status_code == 200
    assert (await api.put(f"/ctms/{email_id}", json=created)).status_code == 201
    async with api.unit_of_work() as uow:
        claimed = await claim_queued(
            uow, limit=10, now=datetime.now(UTC), lease_until=datetime.now(UTC)
        )
    assert [str(item.email_id) for item in claimed] == [email_id]
    assert claimed[0].version == 3
    after = _pending_total((await api.get("/metrics", headers={})).text)
    assert after - before == 3


async def test_delete_queues_the_erasure_when_acoustic_sync_is_on(running_api: RunApi) -> None:
    async with running_api(make_settings(acoustic_sync_feature_flag=True)) as api:
        created = await api.create(sample("minimal"))
        response = await api.delete(f"/ctms/{created['email']['primary_email']}")
        assert response.status_code == 200
        async with api.unit_of_work() as uow:
            (item,) = await claim_queued(
                uow, limit=10, now=datetime.now(UTC), lease_until=datetime.now(UTC)
            )
    assert item.operation == "erase"
    assert item.deletion is not None
    assert str(item.deletion.email_id) == created["email"]["email_id"]


async def test_delete_keeps_no_address_when_acoustic_sync_is_off(api: Api) -> None:
    """Nothing would deliver the erasure: nothing is queued (docs/permissions.md, "Erasure")."""
    created = await api.create(sample("minimal"))
    response = await api.delete(f"/ctms/{created['email']['primary_email']}")
    assert response.status_code == 200
    async with api.unit_of_work() as uow:
        queued = await claim_queued(
            uow, limit=10, now=datetime.now(UTC), lease_until=datetime.now(UTC)
        )
    assert [item for item in queued if item.operation == "erase"] == []
