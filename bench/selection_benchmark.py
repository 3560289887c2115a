"""Bulk selection benchmark: how long `ctms acoustic resync`, `ctms acoustic dump` and `ctms braze resync`
take to count and walk their selection (a newsletter, a waitlist, both, every contact) at N contacts.

    [CTMS_DB_URL=postgresql://postgres@127.0.0.1:5432/postgres] \\
        python bench/selection_benchmark.py [--contacts 1000000]

It creates a throwaway database on that server, or an embedded PostgreSQL without it (as `bench/run.py`
does, and removed afterwards either way), migrates it to the head revision, seeds it with `INSERT … SELECT generate_series` (60 % of the contacts subscribed to
`mozilla-and-you`, half on `firefox-news` of whom 70 % subscribed, 1 % on `rare-news`, 20 % on the `vpn`
waitlist), then counts and walks each selection through `PostgresResyncSelection` in pages of
`SELECTION_PAGE`, as the commands do. It reports the count's time, the walk's time and its slowest page:
a page costs the same wherever the walk is, so a selection of millions is a series of short reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ctms_bench.database import asyncpg_dsn, provide_database  # noqa: E402

from ctms_adapters.postgres import create_engine  # noqa: E402
from ctms_adapters.postgres.acoustic_resync import PostgresResyncSelection  # noqa: E402
from ctms_adapters.postgres.migrations import upgrade  # noqa: E402
from ctms_core.ports.acoustic_resync import ContactSelection  # noqa: E402
from ctms_core.services.acoustic_resync import SELECTION_PAGE  # noqa: E402

SEED = [
    """INSERT INTO emails (email_id, primary_email)
       SELECT md5('c' || n)::uuid, 'contact' || n || '@example.com' FROM generate_series(1, {n}) n""",
    """INSERT INTO newsletters (email_id, name, subscribed)
       SELECT md5('c' || n)::uuid, 'mozilla-and-you', true FROM generate_series(1, {n}) n
       WHERE n % 10 < 6""",
    """INSERT INTO newsletters (email_id, name, subscribed)
       SELECT md5('c' || n)::uuid, 'firefox-news', n % 20 < 14 FROM generate_series(1, {n}, 2) n""",
    """INSERT INTO newsletters (email_id, name, subscribed)
       SELECT md5('c' || n)::uuid, 'rare-news', true FROM generate_series(1, {n}, 100) n""",
    """INSERT INTO waitlists (email_id, name, subscribed)
       SELECT md5('c' || n)::uuid, 'vpn', true FROM generate_series(1, {n}, 5) n""",
    "ANALYZE",
]

SELECTIONS = [
    ContactSelection(newsletter="firefox-news"),
    ContactSelection(newsletter="rare-news"),
    ContactSelection(waitlist="vpn"),
    ContactSelection(newsletter="firefox-news", waitlist="vpn"),
    ContactSelection(),
]


async def _execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _walk_each(url: str) -> None:
    engine = create_engine(
        url, pool_size=1, max_overflow=0, pool_timeout=10, pool_recycle=-1, echo=False
    )
    selection = PostgresResyncSelection(engine)
    try:
        for chosen in SELECTIONS:
            started = time.perf_counter()
            count = await selection.count(chosen)
            counted = time.perf_counter() - started
            walked, pages, slowest, last = 0, 0, 0.0, None
            started = time.perf_counter()
            while True:
                page_started = time.perf_counter()
                page: list[uuid.UUID] = await selection.contacts(
                    chosen, after=last, limit=SELECTION_PAGE
                )
                slowest = max(slowest, time.perf_counter() - page_started)
                if not page:
                    break
                walked, pages, last = walked + len(page), pages + 1, page[-1]
            elapsed = time.perf_counter() - started
            name = f"newsletter={chosen.newsletter} waitlist={chosen.waitlist}"
            print(
                f"{name:45} {count:>9} contacts: count {counted:5.2f} s, walk {elapsed:5.2f} s "
                f"in {pages} pages (slowest {slowest * 1000:.0f} ms)",
                flush=True,
            )
            assert walked == count, f"walked {walked}, counted {count}"
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    arguments = parser.parse_args()
    with contextlib.ExitStack() as stack:
        work_dir = Path(tempfile.mkdtemp(prefix="ctms-selection-bench-"))
        stack.callback(shutil.rmtree, work_dir, ignore_errors=True)
        work_dir.chmod(0o711)  # as root, the embedded server's own user must reach its folder
        database = stack.enter_context(provide_database(work_dir, os.environ.get("CTMS_DB_URL")))
        print(f"database: {database.description}", flush=True)
        upgrade(database.url)
        started = time.monotonic()
        seeding = (statement.format(n=arguments.contacts) for statement in SEED)
        asyncio.run(_execute(asyncpg_dsn(database.url), *seeding))
        print(f"seeded {arguments.contacts} contacts in {time.monotonic() - started:.0f} s")
        asyncio.run(_walk_each(database.url))


if __name__ == "__main__":
    main()
