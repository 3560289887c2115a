"""The benchmark's database: an embedded PostgreSQL of its own, or a throwaway database on
`CTMS_DB_URL`; and bulk seeding of realistic contacts with asyncpg `COPY`."""

from __future__ import annotations

import asyncio
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


def _moment(rng: random.Random, now: datetime, days: int) -> datetime:
    return now - timedelta(seconds=rng.uniform(0, days * 86400))


async def seed(url: str, count: int, *, batch: int = 5000, rng_seed: int = 8) -> Seeded:
    """Insert `count` contacts: 1–5 newsletters, 0–2 waitlists, some FxA (40 %), AMO (10 %) and
    MoFo (5 %) data, timestamps spread over two years; then ANALYZE."""
    rng = random.Random(rng_seed)
    now = datetime.now(UTC)
    email_ids: list[str] = []
    primary_emails: list[str] = []
    started = time.perf_counter()
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        done = 0
        while done < count:
            size = min(batch, count - done)
            rows = _batch(rng, now, done, size)
            async with connection.transaction():
                for table, (columns, records) in rows.items():
                    await connection.copy_records_to_table(table, records=records, columns=columns)
            for record in rows["emails"][1]:
                email_ids.append(str(record[0]))
                primary_emails.append(str(record[1]))
            done += size
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    return Seeded(email_ids, primary_emails, time.perf_counter() - started)


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
