"""Sync benchmark (docs/contract.md §16.2, docs/performance.md): contacts/s of `--workers` worker processes
against the fake Acoustic with injected latency and faults, within the deployment-wide limit.

    python bench/sync_benchmark.py [--contacts 2000] [--latency 0.05] [--fault-rate 0.02] [--workers 3]
        [--max-concurrent 10] [--concurrency 10] [--batch 100] [--mode destination|service]

The fake Acoustic runs in its own process (`python -m tests.support.fake_acoustic`), and so does each
worker (this script with `--role worker`); the database is `CTMS_TEST_DB_URL`'s server (a throwaway
database) or the embedded PostgreSQL. Contacts are seeded with one newsletter each and queued; then the
workers drain the queue together, every Acoustic request holding one of `--max-concurrent` PostgreSQL
request slots (`CTMS_ACOUSTIC_MAX_CONCURRENT`).

`--mode destination` (default) drives `AcousticDestination.deliver` (batched relational rows) from a
minimal worker loop in this script: claim a batch, read the contacts and their products, deliver,
complete the delivered rows and fail the others (due again after `--retry-after` seconds); `--loops`
such loops run in each worker, so one records its outcomes while another delivers. It is the
loop the destination-independent `SyncService` runs once it calls destinations. `--mode service` runs
today's `SyncService.run_pass` (one upload of up to four requests per contact).

Printed: contacts/s (first claim to empty queue), the most requests the fake saw in flight at once,
XML API calls per contact (the fake's count, retries included), worker CPU per contact (user + system
time of the worker processes while they drain, start-up excluded), and how many requests the fake had in
flight on average (whether the workers keep the limit full).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.builders import make_contact, make_newsletter
from tests.support.database import provision_test_database
from tests.support.fake_acoustic import FakeAcoustic

from ctms_adapters.acoustic import HttpxAcousticGateway
from ctms_adapters.postgres import PostgresUnitOfWorkFactory, create_engine
from ctms_adapters.postgres.migrations import upgrade
from ctms_adapters.postgres.request_slots import PostgresRequestSlots
from ctms_adapters.system import SystemClock
from ctms_core.domain.sync import PendingSync
from ctms_core.ports.destinations import Delivery
from ctms_core.services.acoustic_destination import AcousticDestination
from ctms_core.services.acoustic_products import products_of_contacts
from ctms_core.services.sync import SyncPolicy, SyncService
from ctms_entrypoints.container import acoustic_http_client

RETRY_LIMIT = 1000  # the benchmark measures draining, not giving up


def _engine(url: str) -> object:
    return create_engine(
        url, pool_size=10, max_overflow=10, pool_timeout=30, pool_recycle=-1, echo=False
    )


async def seed(url: str, contacts: int) -> None:
    engine = _engine(url)
    factory = PostgresUnitOfWorkFactory(engine)  # type: ignore[arg-type]
    now = datetime.now(UTC) - timedelta(seconds=1)
    async with factory() as uow:
        for index in range(contacts):
            contact = make_contact(
                primary_email=f"bench{index}@example.com",
                basket_token=str(uuid.uuid4()),
                newsletters=(make_newsletter("firefox-news"),),
            )
            await uow.contacts.add(contact)
            await uow.sync_queue.enqueue(contact.email_id, now)
        await uow.commit()
    await engine.dispose()  # type: ignore[attr-defined]


# --- one worker process ---------------------------------------------------------------------------------


async def _deliver_batch(
    factory: PostgresUnitOfWorkFactory,
    destination: AcousticDestination,
    claimed: list[PendingSync],
    retry_after: timedelta,
) -> int:
    async with factory() as uow:
        found = await uow.contacts.get_many([i.email_id for i in claimed if i.operation == "sync"])
        products = await products_of_contacts(uow, found)
    contacts = {contact.email_id: contact for contact in found}
    deliveries = [
        Delivery(
            email_id=item.email_id,
            contact=contacts.get(item.email_id),
            products=tuple(products.get(item.email_id, ())),
            deletion=item.deletion,
        )
        for item in claimed
    ]
    report = await destination.deliver(deliveries)
    failed = {failure.email_id: failure for failure in report.failed}
    async with factory() as uow:
        for item in claimed:
            failure = failed.get(item.email_id)
            if failure is None:
                await uow.sync_queue.complete(item.email_id, item.version)
            else:
                retry_at = datetime.now(UTC) + retry_after
                await uow.sync_queue.fail(item.email_id, item.version, failure.reason, retry_at)
        await uow.commit()
    return len(claimed) - len(failed)


async def drain_with_destination(
    factory: PostgresUnitOfWorkFactory, destination: AcousticDestination, args: argparse.Namespace
) -> int:
    """The minimal worker loop: claim, deliver, record; until the queue is empty."""
    delivered = 0
    retry_after = timedelta(seconds=args.retry_after)
    while True:
        now = datetime.now(UTC)
        async with factory() as uow:
            claimed = await uow.sync_queue.claim(
                limit=args.batch,
                retry_limit=RETRY_LIMIT,
                now=now,
                lease_until=now + timedelta(minutes=5),
            )
            await uow.commit()
        if claimed:
            delivered += await _deliver_batch(factory, destination, claimed, retry_after)
            continue
        async with factory() as uow:
            if (await uow.sync_queue.counts(RETRY_LIMIT)).backlog == 0:
                return delivered
        await asyncio.sleep(0.05)  # the rest is leased by other workers or waits for its retry


async def drain_with_service(
    factory: PostgresUnitOfWorkFactory, gateway: HttpxAcousticGateway, args: argparse.Namespace
) -> int:
    service = SyncService(
        factory,
        gateway,
        SystemClock(),
        SyncPolicy(
            batch_limit=args.batch,
            concurrency=args.concurrency,
            retry_limit=RETRY_LIMIT,
            backoff_base_s=args.retry_after,
            backoff_cap_s=args.retry_after,
        ),
    )
    delivered = 0
    while True:
        stats = await service.run_pass()
        delivered += stats.counts.get("synced", 0)
        if not stats.count_total:
            if stats.sync_backlog == 0:
                return delivered
            await asyncio.sleep(0.05)


async def work(args: argparse.Namespace) -> dict[str, float]:
    engine = _engine(args.db)
    factory = PostgresUnitOfWorkFactory(engine)  # type: ignore[arg-type]
    slots = PostgresRequestSlots(engine, name="acoustic", limit=args.max_concurrent)  # type: ignore[arg-type]
    fake = FakeAcoustic()
    async with acoustic_http_client(args.concurrency) as client:  # the worker's own wiring
        gateway = HttpxAcousticGateway(
            client,
            base_url=args.base_url,
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            refresh_token=fake.refresh_token,
            main_table_id="1",
            newsletter_table_id="2",
            waitlist_table_id="3",
            product_table_id="4",
            timeout=10.0,
            slots=slots,
        )

        async def configuration() -> object:
            async with factory() as uow:
                return await uow.acoustic_config.load()

        destination = AcousticDestination(
            gateway,
            configuration,  # type: ignore[arg-type]
            concurrency=args.concurrency,
        )
        started = time.perf_counter()
        cpu_started = time.process_time()
        if args.mode == "destination":
            delivered = sum(
                await asyncio.gather(
                    *(drain_with_destination(factory, destination, args) for _ in range(args.loops))
                )
            )
        else:
            delivered = await drain_with_service(factory, gateway, args)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    await slots.close()
    await engine.dispose()  # type: ignore[attr-defined]
    return {"delivered": delivered, "elapsed_s": elapsed, "cpu_s": cpu}


# --- the conductor --------------------------------------------------------------------------------------


def run_workers(url: str, base_url: str, args: argparse.Namespace) -> list[dict[str, float]]:
    common = [
        "--role=worker",
        f"--db={url}",
        f"--base-url={base_url}",
        f"--mode={args.mode}",
        f"--batch={args.batch}",
        f"--concurrency={args.concurrency}",
        f"--max-concurrent={args.max_concurrent}",
        f"--retry-after={args.retry_after}",
        f"--loops={args.loops}",
    ]
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, *common],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")},
        )
        for _ in range(args.workers)
    ]
    results = []
    for worker in workers:
        output, _ = worker.communicate(timeout=3600)
        if worker.returncode != 0:
            raise SystemExit(f"a worker failed ({worker.returncode})")
        results.append(json.loads(output.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--fault-rate", type=float, default=0.02)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--max-concurrent", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight per worker")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--retry-after", type=float, default=0.5)
    parser.add_argument(
        "--loops",
        type=int,
        default=2,
        help="batches in progress per worker (destination mode): one claims and delivers while "
        "another records its outcomes, so the slots stay busy",
    )
    parser.add_argument("--mode", choices=("destination", "service"), default="destination")
    parser.add_argument("--role", choices=("conductor", "worker"), default="conductor")
    parser.add_argument("--db")
    parser.add_argument("--base-url")
    args = parser.parse_args()
    if args.role == "worker":
        logging.disable(logging.CRITICAL)  # the per-contact failure lines of the injected faults
        profile = os.environ.get("CTMS_BENCH_PROFILE")
        if profile:  # where a worker's CPU goes: `python -m pstats <file>`
            import cProfile

            with cProfile.Profile(time.process_time) as profiler:
                result = asyncio.run(work(args))
            profiler.dump_stats(f"{profile}.{os.getpid()}")
        else:
            result = asyncio.run(work(args))
        print(json.dumps(result), flush=True)
        return

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as scratch:
        stats_file = Path(scratch) / "fake.json"
        fake = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.fake_acoustic",
                f"--latency={args.latency}",
                f"--fault-rate={args.fault_rate}",
                f"--stats-file={stats_file}",
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert fake.stdout is not None
            base_url = fake.stdout.readline().strip()
            with provision_test_database() as url:
                upgrade(url)
                asyncio.run(seed(url, args.contacts))
                results = run_workers(url, base_url, args)
        finally:
            fake.terminate()
            fake.wait(timeout=30)
        stats = json.loads(stats_file.read_text())
    delivered = sum(r["delivered"] for r in results)
    elapsed = max(r["elapsed_s"] for r in results)
    calls = sum(stats["calls"].values())
    cpu = sum(r["cpu_s"] for r in results)
    print(f"calls by operation: {stats['calls']}; faults served: {stats['faults_served']}")
    print(
        f"fake Acoustic: {stats['mean_in_flight']:.2f} requests in flight on average; a request "
        f"spent {stats['mean_request_s'] * 1000:.0f} ms in it (latency {args.latency * 1000:.0f} ms)"
    )
    print(
        f"sync ({args.mode}): {delivered / elapsed:.1f} contacts/s; {delivered} contacts in "
        f"{elapsed:.2f} s by {args.workers} workers; max in flight {stats['max_in_flight']} "
        f"(limit {args.max_concurrent}); {calls / delivered:.3f} calls/contact; worker CPU "
        f"{cpu / delivered * 1000:.2f} ms/contact (latency {args.latency * 1000:.0f} ms, faults "
        f"{args.fault_rate:.0%}, batch {args.batch}, {args.concurrency} in flight per worker)"
    )


if __name__ == "__main__":
    main()
