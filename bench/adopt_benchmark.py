"""Adoption benchmark (issue #15): adopt a ctms-api v3.3 database of N contacts while a writer keeps
updating and inserting contacts the way v3.3 does, and report the wall time and the writer's worst wait.

    CTMS_TEST_DB_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python bench/adopt_benchmark.py [--contacts 1000000] [--keep]

It creates a throwaway database on that server (dropped at the end unless `--keep`), builds the v3.3
schema from tests/fixtures/ctms_api_schemas/, seeds it with `INSERT … SELECT generate_series` (every
contact with a newsletter, half with a second one, 30 % FxA, 5 % AMO, 2 % MoFo, 20 % a waitlist, 1 %
queued for Acoustic with retries, a few Stripe objects), then runs `adopt` with a writer on a second
connection that, in a loop, updates a random contact and inserts a new one with a newsletter and a
waitlist, timing every statement. The worst statement time of the writer is the longest any adoption step
blocked the old service (a statement waits for a lock as long as a step holds it or waits for it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import sys
import threading
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ctms_adapters.postgres.adoption import adopt  # noqa: E402

DUMP = ROOT / "tests" / "fixtures" / "ctms_api_schemas" / "ctms-api-v3.3.0-schema.sql"
V3_3_REVISION = "375dd57cfed1"

SEED = [
    # One contact per number; e-mail ids derived from it so satellites can refer to them.
    """INSERT INTO emails (email_id, primary_email, basket_token, first_name, mailing_country,
           email_format, email_lang, double_opt_in, has_opted_out_of_email, create_timestamp,
           update_timestamp)
       SELECT md5('c' || n)::uuid, 'contact' || n || '@example.com', md5('t' || n)::uuid::text,
              'Name' || n, 'us', 'H', 'en', n % 3 = 0, false,
              now() - (n || ' seconds')::interval, now() - (n || ' seconds')::interval
       FROM generate_series(1, {n}) AS n""",
    """INSERT INTO newsletters (email_id, name, subscribed, format, lang, source)
       SELECT md5('c' || n)::uuid, 'mozilla-and-you', true, 'H', 'en', 'https://www.mozilla.org/'
       FROM generate_series(1, {n}) AS n""",
    """INSERT INTO newsletters (email_id, name, subscribed, format, lang)
       SELECT md5('c' || n)::uuid, 'firefox-news', n % 4 <> 0, 'H', 'en'
       FROM generate_series(1, {n}, 2) AS n""",
    """INSERT INTO fxa (email_id, fxa_id, primary_email, created_date, lang, first_service,
           account_deleted)
       SELECT md5('c' || n)::uuid, md5('f' || n), 'contact' || n || '@example.com',
              '2021-01-29T18:43:49.082375+00:00', 'en', 'sync', false
       FROM generate_series(1, {n}) AS n WHERE n % 10 < 3""",
    """INSERT INTO amo (email_id, add_on_ids, display_name, email_opt_in, language, "user", user_id)
       SELECT md5('c' || n)::uuid, 'addon-' || n, 'Dev ' || n, true, 'en', true, n::text
       FROM generate_series(1, {n}) AS n WHERE n % 20 = 0""",
    """INSERT INTO mofo (email_id, mofo_email_id, mofo_contact_id, mofo_relevant)
       SELECT md5('c' || n)::uuid, md5('m' || n), md5('k' || n), true
       FROM generate_series(1, {n}) AS n WHERE n % 50 = 0""",
    """INSERT INTO waitlists (email_id, name, source, fields, subscribed)
       SELECT md5('c' || n)::uuid, CASE WHEN n % 2 = 0 THEN 'vpn' ELSE 'relay' END, NULL,
              json_build_object('geo', 'fr', 'platform', 'linux'), true
       FROM generate_series(1, {n}) AS n WHERE n % 5 = 0""",
    """INSERT INTO pending_acoustic (email_id, retry, last_error)
       SELECT md5('c' || n)::uuid, n % 7, CASE WHEN n % 7 = 0 THEN NULL ELSE 'Timeout()' END
       FROM generate_series(1, {n}) AS n WHERE n % 100 = 0""",
    """INSERT INTO api_client (client_id, email, enabled, hashed_secret)
       VALUES ('id_basket', 'basket@example.com', true,
               '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA')""",
    """INSERT INTO stripe_customer (stripe_id, fxa_id, stripe_created, deleted)
       SELECT 'cus_' || n, md5('f' || n), now(), false
       FROM generate_series(1, {n}) AS n WHERE n % 1000 = 1""",
    "ANALYZE",
]


class Writer:
    """The old release's traffic during the adoption: times every statement it sends."""

    def __init__(self, dsn: str, contacts: int) -> None:
        self.dsn, self.contacts = dsn, contacts
        self.stop = threading.Event()
        self.worst = 0.0
        self.worst_statement = ""
        self.statements = 0
        self.errors: list[str] = []

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _timed(
        self, connection: asyncpg.Connection, label: str, sql: str, *args: object
    ) -> None:
        started = time.perf_counter()
        try:
            await connection.execute(sql, *args)
        except asyncpg.PostgresError as error:
            self.errors.append(f"{label}: {type(error).__name__}")
        elapsed = time.perf_counter() - started
        self.statements += 1
        if elapsed > self.worst:
            self.worst, self.worst_statement = elapsed, label

    async def _loop(self) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            while not self.stop.is_set():
                n = random.randint(1, self.contacts)
                await self._timed(
                    connection,
                    "update contact",
                    "UPDATE emails SET first_name = $1, update_timestamp = now() "
                    "WHERE email_id = md5('c' || $2::text)::uuid",
                    f"Edited{n}",
                    str(n),
                )
                email_id = uuid.uuid4()
                await self._timed(
                    connection,
                    "insert contact",
                    "INSERT INTO emails (email_id, primary_email, email_format, email_lang, "
                    "double_opt_in, has_opted_out_of_email, update_timestamp) "
                    "VALUES ($1, $2, 'H', 'en', false, false, now())",
                    email_id,
                    f"new-{email_id.hex}@example.com",
                )
                await self._timed(
                    connection,
                    "insert newsletter",
                    "INSERT INTO newsletters (email_id, name, subscribed, format, lang, "
                    "update_timestamp) VALUES ($1, 'mozilla-and-you', true, 'H', 'en', now())",
                    email_id,
                )
                await self._timed(
                    connection,
                    "insert waitlist",
                    "INSERT INTO waitlists (email_id, name, fields, subscribed, update_timestamp) "
                    """VALUES ($1, 'vpn', '{"geo": "de"}', true, now())""",
                    email_id,
                )
                await self._timed(
                    connection,
                    "enqueue",
                    "INSERT INTO pending_acoustic (email_id, retry, update_timestamp) "
                    "VALUES ($1, 0, now()) ON CONFLICT DO NOTHING",
                    email_id,
                )
                await asyncio.sleep(0.005)
        finally:
            await connection.close()


class PrintedProgress:
    def __init__(self) -> None:
        self.done = 0

    def step_started(self, title: str, total_rows: int | None) -> None:
        self.done = 0
        print(f"  {title}" + (f" ({total_rows} rows)" if total_rows else ""), flush=True)

    def rows_done(self, count: int) -> None:
        self.done += count

    def step_finished(self, title: str, seconds: float) -> None:
        print(f"    {seconds:7.1f} s", flush=True)


async def _prepare(dsn: str, contacts: int) -> None:
    dump = "\n".join(line for line in DUMP.read_text().splitlines() if not line.startswith("\\"))
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(dump)
        await connection.execute("SET search_path = public")
        await connection.execute("INSERT INTO alembic_version VALUES ($1)", V3_3_REVISION)
        for statement in SEED:
            await connection.execute(statement.format(n=contacts))
    finally:
        await connection.close()


async def _admin(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    arguments = parser.parse_args()
    server = os.environ.get("CTMS_TEST_DB_URL")
    if not server:
        sys.exit("set CTMS_TEST_DB_URL to a PostgreSQL server URL (a database is created there)")
    name = f"ctms_adopt_bench_{secrets.token_hex(4)}"
    admin_dsn = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    url = make_url(server).set(database=name)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        started = time.monotonic()
        asyncio.run(_prepare(dsn, arguments.contacts))
        print(
            f"seeded {arguments.contacts} contacts in {time.monotonic() - started:.0f} s",
            flush=True,
        )

        writer = Writer(dsn, arguments.contacts)
        thread = threading.Thread(target=writer.run)
        thread.start()
        time.sleep(1)
        started = time.monotonic()
        try:
            summary = adopt(url.render_as_string(hide_password=False), PrintedProgress())
        finally:
            wall = time.monotonic() - started
            time.sleep(1)
            writer.stop.set()
            thread.join()
        print(
            f"\nadopted {arguments.contacts} contacts in {wall:.1f} s (now at {summary.revision_after})"
        )
        for table in ("emails", "newsletters", "waitlists", "fxa", "pending_acoustic"):
            print(
                f"  {table:18} {summary.rows_before.get(table):>9} → {summary.rows_after.get(table)}"
            )
        print(
            f"concurrent writer: {writer.statements} statements, worst {writer.worst * 1000:.0f} ms "
            f"({writer.worst_statement}), errors: {len(writer.errors)} {writer.errors[:5]}"
        )
    finally:
        if not arguments.keep:
            asyncio.run(_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
