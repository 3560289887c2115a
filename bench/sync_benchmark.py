"""Sync benchmark (docs/contract.md §16.2, docs/performance.md, docs/braze.md): contacts/s of `--workers`
worker processes against the fake Acoustic or the fake Braze with injected latency and faults.

    python bench/sync_benchmark.py [--destination acoustic|braze] [--contacts 2000] [--latency 0.05]
        [--fault-rate 0.02] [--workers 3] [--max-concurrent 10] [--concurrency N] [--batch N]
        [--batches-in-flight 2] [--rounds created[,patched][,unchanged]]

The fake (`python -m tests.support.fake_acoustic` or `tests.support.fake_braze`) runs in its own process,
and so does each worker (this script with `--role worker`); the database is `CTMS_TEST_DB_URL`'s server (a
throwaway database) or the embedded PostgreSQL. Contacts are seeded and queued; then the workers drain
the queue together. For Acoustic each contact has one newsletter; for Braze a newsletter and a waitlist,
both mapped to a subscription group (`ctms braze newsletters add`), so every contact is a full document.
`--rounds` drains the queue again after the API-style writes of each further round (`patched`: a new
first name each; `unchanged`: queued again as it is), against a fresh fake each round: for Braze, the
deltas and the digests that send nothing.

Each worker is `ctms sync` itself: the container built from `CTMS_*` settings (`run_worker`) with
`CTMS_SYNC_DESTINATIONS=--destination`, so the real `SyncWorker` lanes (`--batches-in-flight`,
`CTMS_SYNC_BATCHES_IN_FLIGHT`) run `SyncService` passes that route, claim, deliver through
`AcousticDestination` or `BrazeDestination` and record outcomes. Acoustic: every request holds one of
`--max-concurrent` PostgreSQL request slots (`CTMS_ACOUSTIC_MAX_CONCURRENT`, deployment-wide),
`--concurrency` is `CTMS_ACOUSTIC_CONCURRENCY` (default 10) and `--batch` `CTMS_ACOUSTIC_BATCH_LIMIT`
(default 100). Braze: `--concurrency` is `CTMS_BRAZE_MAX_CONCURRENT` (per worker, default 4), `--batch`
`CTMS_BRAZE_BATCH_LIMIT` (default 300), and `--fault-rate` the share of requests answered with a 503;
`--max-concurrent` does not apply. Only the retry backoff is shortened (`--retry-after`), so a faulted
contact's retry does not leave the run waiting for it. A worker stops once the destination's backlog is
empty (it looks every 0.2 s).

Printed: contacts/s (first pass to empty queue), the most requests the fake saw in flight at once,
requests per contact (the fake's count of XML API calls or Braze requests, retries included), worker
CPU per contact (user + system time of the worker processes while they drain, from their first pass:
imports and the container's start-up excluded), and how many requests the fake had in flight on average
(whether the workers keep the limit full).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
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

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.builders import make_contact, make_newsletter, make_waitlist
from tests.support.database import provision_test_database
from tests.support.fake_acoustic import FakeAcoustic
from tests.support.fake_braze import FakeBraze

from ctms_adapters.postgres import (
    PostgresBrazeSubscriptionGroupRepository,
    PostgresUnitOfWorkFactory,
    create_engine,
)
from ctms_adapters.postgres.migrations import upgrade
from ctms_core.domain.sync import QueueCounts
from ctms_core.ports.braze import TRACK_BATCH_SIZE
from ctms_entrypoints.awaitables import resolved
from ctms_entrypoints.cli.acoustic import run_worker
from ctms_entrypoints.container import build_container, sync_policy_from_settings
from ctms_entrypoints.settings import Settings


def _engine(url: str) -> object:
    return create_engine(
        url, pool_size=10, max_overflow=10, pool_timeout=30, pool_recycle=-1, echo=False
    )


# Braze: the subscription groups of the seeded newsletter and waitlist (`ctms braze newsletters add`).
BRAZE_GROUPS = {
    ("newsletter", "firefox-news"): "8a2b4c61-0f6e-4c7f-9d0e-3b1d7e5a9c21",
    ("waitlist", "vpn"): "c3d5e7f9-1a2b-4c6d-8e0f-2a4c6e8b0d13",
}
# `--rounds`: every contact new (full documents), then patched (one changed attribute each), then
# unchanged (queued again as it is).
ROUNDS = ("created", "patched", "unchanged")
# What the worker settings default to per destination: (batch, requests in flight per worker).
DEFAULTS = {"acoustic": (100, 10), "braze": (300, 4)}


def email_id(index: int) -> uuid.UUID:
    return uuid.UUID(int=index + 1)


async def seed(url: str, contacts: int, destination: str) -> None:
    engine = _engine(url)
    if destination == "braze":
        groups = PostgresBrazeSubscriptionGroupRepository(engine)  # type: ignore[arg-type]
        for (kind, name), group_id in BRAZE_GROUPS.items():
            await groups.add(kind, name, group_id)
    factory = PostgresUnitOfWorkFactory(engine)  # type: ignore[arg-type]
    now = datetime.now(UTC) - timedelta(seconds=1)
    waitlists = (make_waitlist("vpn", fields={"geo": "fr"}),) if destination == "braze" else ()
    async with factory() as uow:
        for index in range(contacts):
            contact = make_contact(
                email_id=email_id(index),
                primary_email=f"bench{index}@example.com",
                basket_token=str(uuid.uuid4()),
                newsletters=(make_newsletter("firefox-news"),),
                waitlists=waitlists,
            )
            await uow.contacts.add(contact, enqueue_at=now)
        await uow.commit()
    await engine.dispose()  # type: ignore[attr-defined]


async def requeue(url: str, contacts: int, *, patch: bool) -> None:
    """Queue every contact again, as the API does on a write: with `patch`, with a new first name (one
    changed attribute each, the `patched` round); without, unchanged (the `unchanged` round: Braze is
    sent nothing, the digests match)."""
    engine = _engine(url)
    factory = PostgresUnitOfWorkFactory(engine)  # type: ignore[arg-type]
    now = datetime.now(UTC) - timedelta(seconds=1)
    async with factory() as uow:
        for index in range(contacts):
            previous = await uow.contacts.get(email_id(index), for_update=True)
            assert previous is not None
            contact = previous
            if patch:
                email = msgspec.structs.replace(previous.email, first_name=f"Patched{index}")
                contact = msgspec.structs.replace(previous, email=email)
            await uow.contacts.save(
                contact, previous=previous, expected_version=None, enqueue_at=now
            )
        await uow.commit()
    await engine.dispose()  # type: ignore[attr-defined]


async def queue_state(url: str, destination: str) -> tuple[QueueCounts, int]:
    """The destination's backlog, and how many contacts were given up."""
    engine = _engine(url)
    async with PostgresUnitOfWorkFactory(engine)() as uow:  # type: ignore[arg-type]
        counts = await uow.sync_queue.counts(destination)
        given_up = len(await uow.sync_queue.failed(destination))
    await engine.dispose()  # type: ignore[attr-defined]
    return counts, given_up


# --- one worker process ---------------------------------------------------------------------------------


def worker_settings(args: argparse.Namespace) -> Settings:
    fake = FakeAcoustic()
    return Settings.from_env(
        {
            **os.environ,
            "CTMS_SYNC_DESTINATIONS": args.destination,
            "CTMS_DB_URL": args.db,
            "CTMS_SECRET_KEY": "sync-benchmark",
            "CTMS_USE_MOZLOG": "false",
            "CTMS_ACOUSTIC_SYNC_FEATURE_FLAG": "true",
            "CTMS_ACOUSTIC_INTEGRATION_FEATURE_FLAG": "true",
            "CTMS_ACOUSTIC_BASE_URL": args.base_url,
            "CTMS_ACOUSTIC_CLIENT_ID": fake.client_id,
            "CTMS_ACOUSTIC_CLIENT_SECRET": fake.client_secret,
            "CTMS_ACOUSTIC_REFRESH_TOKEN": fake.refresh_token,
            "CTMS_ACOUSTIC_MAIN_TABLE_ID": "1",
            "CTMS_ACOUSTIC_NEWSLETTER_TABLE_ID": "2",
            "CTMS_ACOUSTIC_WAITLIST_TABLE_ID": "3",
            "CTMS_ACOUSTIC_PRODUCT_SUBSCRIPTIONS_ID": "4",
            "CTMS_ACOUSTIC_TIMEOUT_S": "10",
            "CTMS_ACOUSTIC_BATCH_LIMIT": str(args.batch),
            "CTMS_ACOUSTIC_CONCURRENCY": str(args.concurrency),
            "CTMS_ACOUSTIC_MAX_CONCURRENT": str(args.max_concurrent),
            "CTMS_BRAZE_URL": args.base_url,
            "CTMS_BRAZE_API_KEY": FakeBraze.api_key,
            "CTMS_BRAZE_BATCH_LIMIT": str(args.batch),
            "CTMS_BRAZE_MAX_CONCURRENT": str(args.concurrency),
            "CTMS_SYNC_BATCHES_IN_FLIGHT": str(args.batches_in_flight),
            "CTMS_ACOUSTIC_LOOP_MIN_SECS": "0.05",
            "CTMS_BACKGROUND_METRICS_PORT": "0",
        }
    )


async def work(args: argparse.Namespace) -> dict[str, float]:
    """`ctms sync` until the destination's backlog is empty; the drain's wall-clock and CPU time."""
    settings = worker_settings(args)
    policy = sync_policy_from_settings(settings)
    container = build_container(
        settings,
        sync_policy=dataclasses.replace(
            policy, backoff_base_s=args.retry_after, backoff_cap_s=args.retry_after
        ),
    )
    engine = _engine(args.db)
    factory = PostgresUnitOfWorkFactory(engine)  # type: ignore[arg-type]
    await resolved(container.sync_worker)  # start-up (HTTP client, TLS, engine) is not the drain
    stop = asyncio.Event()
    started = time.perf_counter()
    cpu_started = time.process_time()
    drained: dict[str, float] = {}

    async def stop_once_drained() -> None:
        while True:
            async with factory() as uow:
                if (await uow.sync_queue.counts(args.destination)).backlog == 0:
                    drained["elapsed_s"] = time.perf_counter() - started
                    drained["cpu_s"] = time.process_time() - cpu_started
                    stop.set()
                    return
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(stop_once_drained())
    code = await run_worker(container, stop)
    await watcher
    await engine.dispose()  # type: ignore[attr-defined]
    return {"code": code, **drained}


# --- the conductor --------------------------------------------------------------------------------------


def run_workers(url: str, base_url: str, args: argparse.Namespace) -> list[dict[str, float]]:
    common = [
        "--role=worker",
        f"--destination={args.destination}",
        f"--db={url}",
        f"--base-url={base_url}",
        f"--batch={args.batch}",
        f"--concurrency={args.concurrency}",
        f"--max-concurrent={args.max_concurrent}",
        f"--retry-after={args.retry_after}",
        f"--batches-in-flight={args.batches_in_flight}",
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
        result = json.loads(output.strip().splitlines()[-1]) if worker.returncode == 0 else {}
        if result.get("code") != 0:
            raise SystemExit(f"a worker failed ({worker.returncode}, {result})")
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--destination", choices=("acoustic", "braze"), default="acoustic")
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--fault-rate", type=float, default=0.02)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=10,
        help="CTMS_ACOUSTIC_MAX_CONCURRENT: Acoustic requests in flight across all workers",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        help="requests in flight per worker (CTMS_ACOUSTIC_CONCURRENCY, default 10, or "
        "CTMS_BRAZE_MAX_CONCURRENT, default 4)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        help="contacts per pass (CTMS_ACOUSTIC_BATCH_LIMIT, default 100, or CTMS_BRAZE_BATCH_LIMIT, "
        "default 300)",
    )
    parser.add_argument("--retry-after", type=float, default=0.5)
    parser.add_argument(
        "--batches-in-flight",
        type=int,
        default=2,
        help="CTMS_SYNC_BATCHES_IN_FLIGHT: batches each worker delivers at once, so one is claimed "
        "while another is delivered and the slots stay busy",
    )
    parser.add_argument(
        "--rounds",
        default="created",
        help="comma-separated, created first: `created` drains the seeded contacts; then `patched` "
        "queues each again with a new first name, `unchanged` queues each again as it is (Braze: "
        "deltas and nothing sent, from the attribute digests)",
    )
    parser.add_argument("--role", choices=("conductor", "worker"), default="conductor")
    parser.add_argument("--db")
    parser.add_argument("--base-url")
    args = parser.parse_args()
    default_batch, default_concurrency = DEFAULTS[args.destination]
    args.batch = args.batch or default_batch
    args.concurrency = args.concurrency or default_concurrency
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

    rounds = args.rounds.split(",")
    if not rounds or set(rounds) - set(ROUNDS) or rounds[0] != "created":
        parser.error(f"--rounds: created first, then any of {', '.join(ROUNDS[1:])}")
    with provision_test_database() as url:
        upgrade(url)
        asyncio.run(seed(url, args.contacts, args.destination))
        for label in rounds:
            if label != "created":
                asyncio.run(requeue(url, args.contacts, patch=label == "patched"))
            run_round(label, url, args)


def run_round(label: str, url: str, args: argparse.Namespace) -> None:
    """Drain the queue with `args.workers` workers against a fresh fake, and print the round's figures."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as scratch:
        stats_file = Path(scratch) / "fake.json"
        fake = subprocess.Popen(
            [
                sys.executable,
                "-m",
                f"tests.support.fake_{args.destination}",
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
            results = run_workers(url, base_url, args)
            counts, given_up = asyncio.run(queue_state(url, args.destination))
        finally:
            fake.terminate()
            fake.wait(timeout=30)
        stats = json.loads(stats_file.read_text())
    if counts.backlog or given_up:
        raise SystemExit(f"not drained: {counts}, {given_up} given up")
    delivered = args.contacts  # every one: the backlog is empty and none was given up
    elapsed = max(r["elapsed_s"] for r in results)
    calls = sum(stats["calls"].values())
    cpu = sum(r["cpu_s"] for r in results)
    if args.destination == "acoustic":
        fake_name, limit = "Acoustic", f"limit {args.max_concurrent}"
    else:  # Braze has no deployment-wide limit: each worker's gateway keeps its own
        fake_name, limit = "Braze", f"{args.workers} × {args.concurrency} per worker"
    tracked = ""
    if "users_tracked" in stats:
        sizes = stats["track_request_sizes"]
        full = sum(1 for size in sizes if size == TRACK_BATCH_SIZE)
        tracked = (
            f"; users tracked: {stats['users_tracked']} in {len(sizes)} requests answered, {full} of "
            f"{TRACK_BATCH_SIZE} users and {len(sizes) - full} smaller"
        )
    print(
        f"[{label}] calls by operation: {stats['calls']}; faults served: {stats['faults_served']}{tracked}"
    )
    print(
        f"[{label}] fake {fake_name}: {stats['mean_in_flight']:.2f} requests in flight on average; a "
        f"request spent {stats['mean_request_s'] * 1000:.0f} ms in it (latency {args.latency * 1000:.0f} ms)"
    )
    print(
        f"[{label}] sync to {args.destination}: {delivered / elapsed:.1f} contacts/s; {delivered} contacts "
        f"in {elapsed:.2f} s by {args.workers} workers; max in flight {stats['max_in_flight']} "
        f"({limit}); {calls / delivered:.3f} requests/contact; worker CPU "
        f"{cpu / delivered * 1000:.2f} ms/contact (latency {args.latency * 1000:.0f} ms, faults "
        f"{args.fault_rate:.0%}, batch {args.batch}, {args.batches_in_flight} batches of "
        f"{args.concurrency} requests in flight per worker)",
        flush=True,
    )


if __name__ == "__main__":
    main()
