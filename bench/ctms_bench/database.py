"""The benchmark's database: an embedded PostgreSQL of its own, or a throwaway database on
`CTMS_DB_URL`; and bulk seeding of realistic contacts with asyncpg `COPY`."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import json
import random
import secrets
import time
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

NEWSLETTERS = (
    "mozilla-and-you",
    "firefox-news",
    "mozilla-foundation",
    "about-mozilla",
    "mozilla-festival",
    "common-voice",
    "mdnplus",
    "firefox-accounts-journey",
    "mozilla-innovation",
    "security-privacy-news",
    "knowledge-is-power",
    "take-action-for-the-internet",
)
WAITLISTS = ("vpn", "relay", "monitor-plus", "mdn-plus", "fakespot")
FIRST_NAMES = ("Jane", "John", "Ana", "Luca", "Mei", "Omar", "Sofía", "Yuki", "Ngozi", "Pavel")
LAST_NAMES = ("Doe", "Smith", "García", "Rossi", "Wang", "Haddad", "Tanaka", "Okafor", "Novak")
COUNTRIES = ("us", "de", "fr", "gb", "es", "it", "jp", "br", "in", "ca")
LANGS = ("en", "de", "fr", "es", "it", "ja", "pt-BR")
DOMAINS = ("example.com", "Example.org", "mail.example.net", "EXAMPLE.io")
SERVICES = ("sync", "monitor", "relay", "vpn", "pocket")


def asyncpg_dsn(url: str) -> str:
    """A PostgreSQL URL in any of CTMS's spellings, as asyncpg takes it."""
    scheme, rest = url.split("://", 1)
    if scheme not in {"postgres", "postgresql", "postgresql+asyncpg"}:
        raise ValueError(f"not a PostgreSQL URL: {scheme}://…")
    return f"postgresql://{rest}"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass
class BenchDatabase:
    url: str  # for CTMS_DB_URL
    description: str


@contextlib.contextmanager
def provide_database(work_dir: Path, admin_url: str | None) -> Iterator[BenchDatabase]:
    """A fresh, empty database for one benchmark run, removed afterwards."""
    if admin_url:
        name = f"ctms_bench_{secrets.token_hex(4)}"
        _run(_create_database(admin_url, name))
        try:
            yield BenchDatabase(with_database(admin_url, name), f"throwaway database {name}")
        finally:
            _run(_drop_database(admin_url, name))
        return
    from ctms_adapters.embedded_pg import EmbeddedPostgres

    with EmbeddedPostgres(work_dir / "postgres") as server:
        yield BenchDatabase(server.url, f"embedded PostgreSQL in {work_dir / 'postgres'}")


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coroutine)


async def _create_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@dataclass
class Seeded:
    email_ids: list[str]
    primary_emails: list[str]
    seconds: float
    load_seconds: float = 0.0  # COPY of the rows, without indexes and constraints
    index_seconds: float = 0.0  # building the indexes and constraints again, then ANALYZE


SEEDED_TABLES = ("emails", "newsletters", "waitlists", "fxa", "amo", "mofo")
BATCH = 20_000


def _moment(rng: random.Random, now: datetime, days: int) -> datetime:
    return now - timedelta(seconds=rng.uniform(0, days * 86400))


def _generate(rng_seed: int, now: datetime, offset: int, size: int) -> Rows:
    """One batch, from its own random generator: batches can be made in any process, in any order,
    and the data set is still the same for the same seed."""
    return _batch(random.Random(f"{rng_seed}:{offset}"), now, offset, size)


async def seed(url: str, count: int, *, batch: int = BATCH, rng_seed: int = 8) -> Seeded:
    """Insert `count` contacts: 1–5 newsletters, 0–2 waitlists, some FxA (40 %), AMO (10 %) and
    MoFo (5 %) data, timestamps spread over two years; then ANALYZE.

    Made for millions of contacts: the indexes and constraints of the seeded tables (and the foreign
    keys pointing at them) are dropped before the `COPY` and built again after it, as a bulk load should
    be; the rows are generated in child processes while the parent copies the previous batches."""
    now = datetime.now(UTC)
    email_ids: list[str] = []
    primary_emails: list[str] = []
    started = time.perf_counter()
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("SET synchronous_commit = off")
        await connection.execute("SET maintenance_work_mem = '512MB'")
        restore = await _drop_indexes_and_constraints(connection)
        offsets = list(range(0, count, batch))
        loop = asyncio.get_running_loop()
        with concurrent.futures.ProcessPoolExecutor(max_workers=2) as pool:
            pending: collections.deque[asyncio.Future[Rows]] = collections.deque()
            for offset in offsets:
                pending.append(
                    loop.run_in_executor(
                        pool, _generate, rng_seed, now, offset, min(batch, count - offset)
                    )
                )
                if len(pending) < 3:  # a few batches ahead, not the whole data set in memory
                    continue
                await _copy(connection, await pending.popleft(), email_ids, primary_emails)
            while pending:
                await _copy(connection, await pending.popleft(), email_ids, primary_emails)
        loaded = time.perf_counter()
        for statement in restore:
            await connection.execute(statement)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    finished = time.perf_counter()
    return Seeded(
        email_ids,
        primary_emails,
        finished - started,
        load_seconds=loaded - started,
        index_seconds=finished - loaded,
    )


async def _copy(
    connection: asyncpg.Connection, rows: Rows, email_ids: list[str], primary_emails: list[str]
) -> None:
    async with connection.transaction():
        for table, (columns, records) in rows.items():
            await connection.copy_records_to_table(table, records=records, columns=columns)
    for record in rows["emails"][1]:
        email_ids.append(str(record[0]))
        primary_emails.append(str(record[1]))


async def _drop_indexes_and_constraints(connection: asyncpg.Connection) -> list[str]:
    """Drop the indexes and the primary, unique and foreign keys of the seeded tables, and the foreign
    keys of other tables that point at them; return the statements that create them again, in an order
    that works (indexes and keys first, then the foreign keys, which check every row)."""
    tables = list(SEEDED_TABLES)
    foreign_keys = await connection.fetch(
        """SELECT conrelid::regclass::text AS owner, conname, pg_get_constraintdef(oid) AS definition
           FROM pg_constraint
           WHERE contype = 'f' AND (conrelid::regclass::text = ANY($1)
                 OR confrelid::regclass::text = ANY($1))""",
        tables,
    )
    keys = await connection.fetch(
        """SELECT conrelid::regclass::text AS owner, conname, pg_get_constraintdef(oid) AS definition
           FROM pg_constraint
           WHERE contype IN ('p', 'u') AND conrelid::regclass::text = ANY($1)""",
        tables,
    )
    indexes = await connection.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
           FROM pg_index i
           WHERE i.indrelid::regclass::text = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
        tables,
    )
    for row in foreign_keys:
        await connection.execute(f'ALTER TABLE {row["owner"]} DROP CONSTRAINT "{row["conname"]}"')
    for row in keys:
        await connection.execute(f'ALTER TABLE {row["owner"]} DROP CONSTRAINT "{row["conname"]}"')
    for row in indexes:
        await connection.execute(f"DROP INDEX {row['name']}")
    return [
        *[f"{row['definition']}" for row in indexes],
        *[
            f'ALTER TABLE {row["owner"]} ADD CONSTRAINT "{row["conname"]}" {row["definition"]}'
            for row in keys
        ],
        *[
            f'ALTER TABLE {row["owner"]} ADD CONSTRAINT "{row["conname"]}" {row["definition"]}'
            for row in foreign_keys
        ],
    ]


def backend_pids(url: str) -> list[int]:
    """The process ids of the PostgreSQL backends connected to the database of `url` (other than the
    one asking): on a local server, their CPU is the database's share of the work."""

    async def ask() -> list[int]:
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await connection.close()
        return [row["pid"] for row in rows]

    return asyncio.run(ask())


async def relation_sizes(url: str) -> dict[str, dict[str, int]]:
    """Bytes on disk of every table of the schema (`table`: heap and TOAST; `indexes`; `total`) and of
    every index (`pg_relation_size`)."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        tables = await connection.fetch(
            """SELECT c.relname, pg_table_size(c.oid) AS heap, pg_indexes_size(c.oid) AS indexes,
                      pg_total_relation_size(c.oid) AS total, c.reltuples::bigint AS rows
               FROM pg_class c
               WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
               ORDER BY pg_total_relation_size(c.oid) DESC"""
        )
        indexes = await connection.fetch(
            """SELECT c.relname, t.relname AS table_name, pg_relation_size(c.oid) AS size
               FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
                    JOIN pg_class t ON t.oid = i.indrelid
               WHERE c.relnamespace = 'public'::regnamespace
               ORDER BY pg_relation_size(c.oid) DESC"""
        )
    finally:
        await connection.close()
    return {
        "tables": {
            row["relname"]: {
                "table": row["heap"],
                "indexes": row["indexes"],
                "total": row["total"],
                "rows_estimate": row["rows"],
            }
            for row in tables
        },
        "indexes": {
            row["relname"]: {"table": row["table_name"], "size": row["size"]} for row in indexes
        },
    }


Rows = dict[str, tuple[list[str], list[tuple[object, ...]]]]


def _batch(rng: random.Random, now: datetime, offset: int, size: int) -> Rows:
    emails: list[tuple[object, ...]] = []
    newsletters: list[tuple[object, ...]] = []
    waitlists: list[tuple[object, ...]] = []
    fxa: list[tuple[object, ...]] = []
    amo: list[tuple[object, ...]] = []
    mofo: list[tuple[object, ...]] = []
    for number in range(offset, offset + size):
        email_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{first}.{last}".encode("ascii", "ignore").decode()  # lower() differs by locale
        address = f"{local}.{number}@{rng.choice(DOMAINS)}"
        created = _moment(rng, now, 730)
        updated = created + (now - created) * rng.random()
        lang = rng.choice(LANGS)
        emails.append(
            (
                email_id,
                address,
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                f"00Q{rng.getrandbits(60):015x}" if rng.random() < 0.3 else None,
                first,
                last,
                rng.choice(COUNTRIES),
                rng.choice("HT"),
                lang,
                rng.random() < 0.9,
                rng.random() < 0.05,
                None,
                created,
                updated,
            )
        )
        for name in rng.sample(NEWSLETTERS, rng.randint(1, 5)):
            newsletters.append(
                (
                    email_id,
                    name,
                    rng.random() < 0.9,
                    "H",
                    lang,
                    "https://www.mozilla.org/newsletter/",
                    None,
                    created,
                    updated,
                )
            )
        for name in rng.sample(WAITLISTS, rng.choice((0, 0, 1, 1, 2))):
            fields = {
                "geo": rng.choice(COUNTRIES),
                "platform": rng.choice(("win64", "mac", "linux")),
            }
            source = "https://www.mozilla.org/products/"
            waitlists.append(
                (email_id, name, source, True, None, json.dumps(fields), created, updated)
            )
        if rng.random() < 0.4:
            fxa.append(
                (
                    email_id,
                    f"{rng.getrandbits(128):032x}",
                    address.lower() if rng.random() < 0.8 else f"other.{number}@example.com",
                    created.date().isoformat(),
                    lang,
                    rng.choice(SERVICES),
                    False,
                    created,
                    updated,
                )
            )
        if rng.random() < 0.1:
            amo.append(
                (
                    email_id,
                    ",".join(str(rng.randint(1, 99999)) for _ in range(rng.randint(1, 3))),
                    f"{first} {last}",
                    rng.random() < 0.5,
                    lang[:5],
                    date.today() - timedelta(days=rng.randint(0, 365)),
                    rng.choice(COUNTRIES),
                    f"https://addons.mozilla.org/u/{number}",
                    True,
                    str(100000 + number),
                    f"user{number}",
                    created,
                    updated,
                )
            )
        if rng.random() < 0.05:
            mofo_email_id = str(uuid.UUID(int=rng.getrandbits(128)))
            mofo.append((email_id, mofo_email_id, f"mofo-{number}", True, created, updated))
    return {
        "emails": (
            [
                "email_id",
                "primary_email",
                "basket_token",
                "sfdc_id",
                "first_name",
                "last_name",
                "mailing_country",
                "email_format",
                "email_lang",
                "double_opt_in",
                "has_opted_out_of_email",
                "unsubscribe_reason",
                "create_timestamp",
                "update_timestamp",
            ],
            emails,
        ),
        "newsletters": (
            [
                "email_id",
                "name",
                "subscribed",
                "format",
                "lang",
                "source",
                "unsub_reason",
                "create_timestamp",
                "update_timestamp",
            ],
            newsletters,
        ),
        "waitlists": (
            [
                "email_id",
                "name",
                "source",
                "subscribed",
                "unsub_reason",
                "fields",
                "create_timestamp",
                "update_timestamp",
            ],
            waitlists,
        ),
        "fxa": (
            [
                "email_id",
                "fxa_id",
                "primary_email",
                "created_date",
                "lang",
                "first_service",
                "account_deleted",
                "create_timestamp",
                "update_timestamp",
            ],
            fxa,
        ),
        "amo": (
            [
                "email_id",
                "add_on_ids",
                "display_name",
                "email_opt_in",
                "language",
                "last_login",
                "location",
                "profile_url",
                "user",
                "user_id",
                "username",
                "create_timestamp",
                "update_timestamp",
            ],
            amo,
        ),
        "mofo": (
            [
                "email_id",
                "mofo_email_id",
                "mofo_contact_id",
                "mofo_relevant",
                "create_timestamp",
                "update_timestamp",
            ],
            mofo,
        ),
    }
