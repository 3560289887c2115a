"""Sync benchmark (docs/contract.md §16.2): one worker's contacts/s against the fake Acoustic with injected latency.

    python bench/sync_benchmark.py [--contacts 2000] [--latency 0.05] [--concurrency 10] [--batch 100]

The fake Acoustic runs in its own process (`python -m tests.support.fake_acoustic`); the database is
`CTMS_TEST_DB_URL`'s server (a throwaway database) or the embedded PostgreSQL. Contacts are seeded with one
newsletter each (AddRecipient + one relational upload per contact), queued, then one `SyncService` drains
the queue with the production gateway; the script prints contacts/s.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.builders import make_contact, make_newsletter
from tests.support.database import provision_test_database
from tests.support.fake_acoustic import FakeAcoustic

from ctms_adapters.acoustic import HttpxAcousticGateway
from ctms_adapters.postgres import PostgresUnitOfWorkFactory, create_engine
from ctms_adapters.postgres.migrations import upgrade
from ctms_adapters.system import SystemClock
from ctms_core.services.acoustic_admin import AcousticAdminService
from ctms_core.services.acoustic_destination import AcousticDestination
from ctms_core.services.sync import SyncPolicy, SyncService
from ctms_entrypoints.container import acoustic_http_client


async def run(url: str, base_url: str, args: argparse.Namespace) -> float:
    engine = create_engine(
        url, pool_size=10, max_overflow=10, pool_timeout=30, pool_recycle=-1, echo=False
    )
    factory = PostgresUnitOfWorkFactory(engine)
    now = datetime.now(UTC)
    async with factory() as uow:
        for index in range(args.contacts):
            contact = make_contact(
                primary_email=f"bench{index}@example.com",
                basket_token=str(uuid.uuid4()),
                newsletters=(make_newsletter("firefox-news"),),
            )
            await uow.contacts.add(contact, enqueue_at=now)
        await uow.commit()
    fake = FakeAcoustic()
    async with acoustic_http_client(args.concurrency) as client:  # the worker's own wiring
        gateway = HttpxAcousticGateway(
            client,
            base_url=base_url,
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            refresh_token=fake.refresh_token,
            main_table_id="1",
            newsletter_table_id="2",
            waitlist_table_id="3",
            product_table_id="4",
            timeout=10.0,
        )
        configuration = AcousticAdminService(factory, SystemClock()).configuration
        service = SyncService(
            factory,
            AcousticDestination(gateway, configuration, concurrency=args.concurrency),
            SystemClock(),
            SyncPolicy(batch_limit=args.batch),
        )
        started = time.perf_counter()
        synced = 0
        while True:
            stats = await service.run_pass()
            if not stats.count_total:
                break
            synced += stats.counts.get("synced", 0)
        elapsed = time.perf_counter() - started
    await engine.dispose()
    print(f"synced {synced} contacts in {elapsed:.2f} s")
    return synced / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_acoustic", "--latency", str(args.latency)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        base_url = fake.stdout.readline().strip()
        with provision_test_database() as url:
            upgrade(url)
            rate = asyncio.run(run(url, base_url, args))
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    print(
        f"sync: {rate:.1f} contacts/s (latency {args.latency * 1000:.0f} ms, "
        f"concurrency {args.concurrency}, batch {args.batch}; target >= 100)"
    )


if __name__ == "__main__":
    main()
