"""Braze destination benchmark (issue #18 item 7): contacts/s through `BrazeDestination` against the fake
Braze with injected latency.

    CTMS_TEST_DB_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        python bench/braze_benchmark.py [--contacts 3000] [--latency 0.05] [--batch 300] [--concurrency 4]

The fake Braze runs in its own process (`python -m tests.support.fake_braze`); the subscription group
mapping and the attribute digests are in a throwaway PostgreSQL database (`CTMS_TEST_DB_URL`'s server, or
the embedded one), as in production. Contacts (one mapped newsletter and a waitlist each) are handed to
`deliver` `--batch` at a time, as a worker hands it the contacts of one pass, through the production
httpx gateway (`--concurrency` requests in flight). Three rounds: every contact new (full documents),
every contact patched (one changed attribute each), every contact unchanged (no request). Prints
contacts/s, requests per contact and this process's CPU time per contact for each.

The sync queue's own work (claim, complete) is not included: `run_destination` is the part the lead folds
into `bench/sync_benchmark.py --destination braze` once the worker calls destinations.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from tests.builders import make_contact, make_newsletter, make_waitlist
from tests.support.database import provision_test_database
from tests.support.fake_braze import FakeBraze

from ctms_adapters.braze import HttpxBrazeGateway
from ctms_adapters.postgres import (
    PostgresBrazeDigestStore,
    PostgresBrazeSubscriptionGroupRepository,
    create_engine,
)
from ctms_adapters.postgres.migrations import upgrade
from ctms_core.domain.contact import Contact
from ctms_core.ports.destinations import Delivery, SyncDestination
from ctms_core.services.braze_destination import BrazeDestination


async def run_destination(
    destination: SyncDestination, deliveries: Sequence[Delivery], batch: int
) -> tuple[float, int, float, int]:
    """Deliver `deliveries` `batch` at a time; (seconds, requests, CPU seconds, failures)."""
    requests = failures = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for start in range(0, len(deliveries), batch):
        report = await destination.deliver(deliveries[start : start + batch])
        requests += report.requests
        failures += len(report.failed)
    return time.perf_counter() - started, requests, time.process_time() - cpu_started, failures


def contacts(count: int, first_name: str) -> list[Contact]:
    return [
        make_contact(
            email_id=uuid.UUID(int=index + 1),
            primary_email=f"bench{index}@example.com",
            basket_token=str(uuid.UUID(int=10**9 + index)),
            first_name=first_name,
            newsletters=(make_newsletter("firefox-news"),),
            waitlists=(make_waitlist("vpn", fields={"geo": "fr"}),),
        )
        for index in range(count)
    ]


async def run(url: str, base_url: str, args: argparse.Namespace) -> None:
    engine = create_engine(
        url, pool_size=5, max_overflow=5, pool_timeout=30, pool_recycle=-1, echo=False
    )
    groups = PostgresBrazeSubscriptionGroupRepository(engine)
    await groups.add("newsletter", "firefox-news", "8a2b4c61-0f6e-4c7f-9d0e-3b1d7e5a9c21")
    await groups.add("waitlist", "vpn", "c3d5e7f9-1a2b-4c6d-8e0f-2a4c6e8b0d13")
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(limits=limits) as client:
        gateway = HttpxBrazeGateway(
            client,
            base_url=base_url,
            api_key=FakeBraze.api_key,
            max_concurrent_requests=args.concurrency,
        )
        destination = BrazeDestination(gateway, groups.load, PostgresBrazeDigestStore(engine))
        rounds = (
            ("created", contacts(args.contacts, "Ada")),
            ("patched", contacts(args.contacts, "Augusta")),
            ("unchanged", contacts(args.contacts, "Augusta")),
        )
        for label, round_contacts in rounds:
            deliveries = [Delivery(email_id=c.email.email_id, contact=c) for c in round_contacts]
            seconds, requests, cpu, failures = await run_destination(
                destination, deliveries, args.batch
            )
            print(
                f"braze {label:9}: {len(deliveries) / seconds:8.1f} contacts/s, "
                f"{requests / len(deliveries):.3f} requests/contact, "
                f"{cpu / len(deliveries) * 1000:.3f} ms CPU/contact, {failures} failures "
                f"({len(deliveries)} contacts in {seconds:.2f} s)"
            )
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    fake = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_braze", "--latency", str(args.latency)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        base_url = fake.stdout.readline().strip()
        with provision_test_database() as url:
            upgrade(url)
            asyncio.run(run(url, base_url, args))
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    print(
        f"(latency {args.latency * 1000:.0f} ms, batch {args.batch}, "
        f"{args.concurrency} requests in flight)"
    )


if __name__ == "__main__":
    main()
