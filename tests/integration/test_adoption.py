"""`ctms db adopt` on databases built from ctms-api's own schema dumps (tests/fixtures/ctms_api_schemas),
one per release, on the test server: each gets realistic and awkward rows, is adopted, then read through the
HTTP API and written to the way the old release writes (docs/cutover.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner, Result

from ctms_adapters.postgres import adoption
from ctms_adapters.postgres.adoption import AdoptionRefusedError, adopt, plan_adoption
from ctms_adapters.postgres.migrations import check, current, head, upgrade
from ctms_adapters.security.passwords import Argon2PasswordHasher
from ctms_entrypoints.cli.main import cli
from tests.support.database import to_asyncpg_dsn, to_sqlalchemy_url
from tests.support.postgres_app import postgres_app

SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "ctms_api_schemas"


@dataclass(frozen=True)
class Source:
    release: str
    dump: str
    revision: str

    @property
    def has_acoustic(self) -> bool:
        return self.release == "v3.3.0"

    @property
    def has_stripe(self) -> bool:
        return self.release in ("v3.3.0", "v4.0.0")

    @property
    def has_last_access(self) -> bool:
        return self.release in ("v5.1.0", "v6.0.4")


SOURCES = (
    Source("v3.3.0", "ctms-api-v3.3.0-schema.sql", "375dd57cfed1"),
    Source("v4.0.0", "ctms-api-v4.0.0-schema.sql", "432e8585fe17"),
    Source("v5.0.0", "ctms-api-v5.0.0-schema.sql", "cea70cf9d626"),
    Source("v5.1.0", "ctms-api-v5.1.0-schema.sql", "f2041a868dca"),
    Source("v6.0.4", "ctms-api-v6.0.4-schema.sql", "fd04e56b249e"),
)
V3_3 = SOURCES[0]

BASKET_SECRET = "secret_basket_" + "x" * 20
T1 = datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
T2 = datetime(2023, 9, 30, 23, 59, 59, tzinfo=UTC)
LAST_ACCESS = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

FULL = uuid.UUID("67e52c77-950f-4f28-accb-bb3ea1a2c51a")
NULLS = uuid.UUID("93db83d4-4119-4e0c-af87-a713786fa81d")
MINIMAL = uuid.UUID("62d8d3c6-95f3-4ed6-b176-7f69acff22f6")
OLD_WRITE = uuid.UUID("332de237-cab7-4461-bcc3-48e68f42bd5c")


# --- databases ------------------------------------------------------------------------------------------


@pytest.fixture
async def new_database(database_url: str) -> AsyncIterator[Callable[[], str]]:
    """Create empty databases on the test server (the session database's server); dropped after."""
    maintenance = to_asyncpg_dsn(database_url)
    created: list[str] = []

    def create() -> str:
        name = f"ctms_adopt_{secrets.token_hex(5)}"
        _run(_execute(maintenance, f'CREATE DATABASE "{name}"'))
        created.append(name)
        return to_sqlalchemy_url(database_url, database=name)

    yield create
    for name in created:
        await _execute(maintenance, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(coroutine: Any) -> Any:
    """Run on a private loop (fixtures and tests call it while the session loop runs)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


async def _execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_asyncpg_dsn(url))
    try:
        yield connection
    finally:
        await connection.close()


async def build_ctms_api_database(url: str, source: Source) -> None:
    """The schema ctms-api's migrations create for `source`, at its alembic revision."""
    dump = (SCHEMAS / source.dump).read_text()
    # pg_dump's `\restrict` lines are psql meta-commands, not SQL.
    statements = "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))
    async with connected(url) as connection:
        await connection.execute(statements)
        await connection.execute(
            "INSERT INTO public.alembic_version (version_num) VALUES ($1)", source.revision
        )


async def seed(url: str, source: Source) -> None:
    """Rows as the old release stored them, awkward ones included."""
    hashed = Argon2PasswordHasher().hash(BASKET_SECRET)
    async with connected(url) as c:
        # A contact with every group, mixed-case address, strings at their column limits.
        await c.execute(
            "INSERT INTO emails (email_id, primary_email, basket_token, sfdc_id, first_name, "
            "last_name, mailing_country, email_format, email_lang, double_opt_in, "
            "has_opted_out_of_email, unsubscribe_reason, create_timestamp, update_timestamp) "
            "VALUES ($1, 'Mozilla.Fan@Example.COM', 'd9ba6182-f5dd-4728-a477-2cc11bf62b69', "
            "'001A000001aMozFan', $2, 'of Mozilla', 'ca', 'T', 'fr-CA', true, false, "
            "'done with this mailing list', $3, $4)",
            FULL,
            "F" * 255,
            T1,
            T2,
        )
        await c.execute(
            "INSERT INTO amo (email_id, add_on_ids, display_name, email_opt_in, language, "
            'last_login, location, profile_url, "user", user_id, username, create_timestamp, '
            "update_timestamp) VALUES ($1, $2, '#1 Mozilla Fan', true, 'fr,en', '2020-01-27', "
            "'The Inter', $3, true, '123', $4, $5, $6)",
            FULL,
            "a" * 500,
            "p" * 40,
            "u" * 100,
            T1,
            T2,
        )
        await c.execute(
            "INSERT INTO fxa (email_id, fxa_id, primary_email, created_date, lang, first_service, "
            "account_deleted, create_timestamp, update_timestamp) VALUES ($1, "
            "'611b6788-2bba-42a6-98c9-9ce6eb9cbd34', 'FxA-Fan@Example.com', $2, 'fr,fr-CA', "
            "'monitor', false, $3, $4)",
            FULL,
            "2019-05-22T08:29:31.906094+00:00".ljust(50, "0"),
            T1,
            T2,
        )
        await c.execute(
            "INSERT INTO mofo (email_id, mofo_email_id, mofo_contact_id, mofo_relevant, "
            "create_timestamp, update_timestamp) VALUES ($1, "
            "'195207d2-63f2-4c9f-b149-80e9c408477a', '5e499cc0-eeb5-4f0e-aae6-a101721874b8', "
            "true, $2, $3)",
            FULL,
            T1,
            T2,
        )
        await c.executemany(
            "INSERT INTO newsletters (email_id, name, subscribed, format, lang, source, "
            "unsub_reason, create_timestamp, update_timestamp) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                (FULL, "mozilla-foundation", True, "H", "fr", None, None, T1, T2),
                (FULL, "common-voice", False, "T", "en", "https://commonvoice.mozilla.org/fr",
                 "too many e-mails", T1, T1),
            ],
        )  # fmt: skip
        await c.execute(
            "INSERT INTO waitlists (email_id, name, source, fields, subscribed, unsub_reason, "
            "create_timestamp, update_timestamp) VALUES "
            """($1, 'vpn', 'https://www.mozilla.org/products/vpn/', '{"geo": "ca", "platform": "windows,android"}', true, NULL, $2, $3),"""
            """($1, 'relay', NULL, '{"geo":"cn"}', true, NULL, $2, $3),"""
            """($1, 'super-product', NULL, '{"geo": "fr", "extra": {"nested": [1, 2.5, null]}}', false, 'not interested', $2, $3)""",
            FULL,
            T1,
            T2,
        )
        # NULLs the old service allowed: booleans, format, language, timestamps it defaulted.
        await c.execute(
            "INSERT INTO emails (email_id, primary_email, email_format, email_lang, double_opt_in, "
            "has_opted_out_of_email, create_timestamp, update_timestamp) "
            "VALUES ($1, 'nulls@example.com', NULL, NULL, NULL, NULL, $2, $2)",
            NULLS,
            T1,
        )
        await c.execute(
            "INSERT INTO amo (email_id, email_opt_in, \"user\", user_id) VALUES ($1, NULL, NULL, '7')",
            NULLS,
        )
        await c.execute(
            "INSERT INTO newsletters (email_id, name, subscribed, format, lang, create_timestamp, "
            "update_timestamp) VALUES ($1, 'firefox-news', NULL, NULL, NULL, $2, $2)",
            NULLS,
            T1,
        )
        await c.execute(
            "INSERT INTO emails (email_id, primary_email, create_timestamp, update_timestamp) "
            "VALUES ($1, 'MINIMAL@example.org', $2, $2)",
            MINIMAL,
            T2,
        )
        # API clients: Basket's (known secret), one with enabled NULL, one disabled.
        columns = "client_id, email, enabled, hashed_secret" + (
            ", last_access" if source.has_last_access else ""
        )
        values = "$1, $2, $3, $4" + (", $5" if source.has_last_access else "")
        extra: tuple[Any, ...] = (LAST_ACCESS,) if source.has_last_access else ()
        for client_id, enabled in (("id_basket", True), ("id_unset", None), ("id_off", False)):
            await c.execute(
                f"INSERT INTO api_client ({columns}) VALUES ({values})",
                client_id,
                f"{client_id}@example.com",
                enabled,
                hashed,
                *extra,
            )
        if source.has_acoustic:
            await c.executemany(
                "INSERT INTO pending_acoustic (email_id, retry, last_error, create_timestamp, "
                "update_timestamp) VALUES ($1, $2, $3, $4, $5)",
                [
                    (FULL, 3, "HTTPError('500 Server Error')", T1, T2),
                    (NULLS, 0, None, T1, T1),
                    (MINIMAL, 7, "Timeout()", T1, T1),
                ],
            )
            await c.executemany(
                "INSERT INTO acoustic_field (tablename, field) VALUES ($1, $2)",
                [
                    ("main", "email_id"),
                    ("main", "fxa_id"),
                    ("waitlist", "geo"),
                    ("main", "x" * 255),
                ],
            )
            await c.executemany(
                "INSERT INTO acoustic_newsletter_mapping (source, destination) VALUES ($1, $2)",
                [("mozilla-foundation", "sub_mozilla_foundation"), ("my-news", "sub_my_news")],
            )
        if source.has_stripe:
            await c.execute(
                "INSERT INTO stripe_customer (stripe_id, fxa_id, default_source_id, "
                "invoice_settings_default_payment_method_id, stripe_created, deleted) VALUES "
                "('cus_1', '611b6788-2bba-42a6-98c9-9ce6eb9cbd34', 'src_1', 'pm_1', $1, false)",
                T1,
            )
            await c.execute(
                "INSERT INTO stripe_price (stripe_id, stripe_product_id, stripe_created, active, "
                "currency, recurring_interval, recurring_interval_count, unit_amount) VALUES "
                "('price_1', 'prod_1', $1, true, 'usd', 'month', 1, 999)",
                T1,
            )
            await c.execute(
                "INSERT INTO stripe_subscription (stripe_id, stripe_customer_id, stripe_created, "
                "cancel_at_period_end, current_period_end, current_period_start, start_date, "
                "status) VALUES ('sub_1', 'cus_1', $1, false, $2, $1, $1, 'active')",
                T1,
                T2,
            )
            await c.execute(
                "INSERT INTO stripe_subscription_item (stripe_id, stripe_subscription_id, "
                "stripe_price_id, stripe_created) VALUES ('si_1', 'sub_1', 'price_1', $1)",
                T1,
            )
            await c.execute(
                "INSERT INTO stripe_invoice (stripe_id, stripe_customer_id, stripe_created, "
                "currency, total, status) VALUES ('in_1', 'cus_1', $1, 'usd', 999, 'paid')",
                T1,
            )
            await c.execute(
                "INSERT INTO stripe_invoice_line_item (stripe_id, stripe_invoice_id, stripe_type, "
                "stripe_price_id, stripe_subscription_id, stripe_subscription_item_id, amount, "
                "currency) VALUES ('il_1', 'in_1', 'subscription', 'price_1', 'sub_1', 'si_1', "
                "999, 'usd')"
            )


# --- what the v3.3 contract says these rows read as (docs/compatibility.md) ---------------------------


def _ts(moment: datetime) -> str:
    return moment.isoformat()


def expected_full() -> dict[str, Any]:
    return {
        "amo": {
            "add_on_ids": "a" * 500,
            "display_name": "#1 Mozilla Fan",
            "email_opt_in": True,
            "language": "fr,en",
            "last_login": date(2020, 1, 27).isoformat(),
            "location": "The Inter",
            "profile_url": "p" * 40,
            "user": True,
            "user_id": "123",
            "username": "u" * 100,
            "create_timestamp": _ts(T1),
            "update_timestamp": _ts(T2),
        },
        "email": {
            "primary_email": "Mozilla.Fan@Example.COM",
            "basket_token": "d9ba6182-f5dd-4728-a477-2cc11bf62b69",
            "double_opt_in": True,
            "sfdc_id": "001A000001aMozFan",
            "first_name": "F" * 255,
            "last_name": "of Mozilla",
            "mailing_country": "ca",
            "email_format": "T",
            "email_lang": "fr-CA",
            "has_opted_out_of_email": False,
            "unsubscribe_reason": "done with this mailing list",
            "email_id": str(FULL),
            "create_timestamp": _ts(T1),
            "update_timestamp": _ts(T2),
        },
        "fxa": {
            "fxa_id": "611b6788-2bba-42a6-98c9-9ce6eb9cbd34",
            "primary_email": "FxA-Fan@Example.com",
            "created_date": "2019-05-22T08:29:31.906094+00:00".ljust(50, "0"),
            "lang": "fr,fr-CA",
            "first_service": "monitor",
            "account_deleted": False,
        },
        "mofo": {
            "mofo_email_id": "195207d2-63f2-4c9f-b149-80e9c408477a",
            "mofo_contact_id": "5e499cc0-eeb5-4f0e-aae6-a101721874b8",
            "mofo_relevant": True,
        },
        "newsletters": [
            {
                "name": "common-voice",
                "subscribed": False,
                "format": "T",
                "lang": "en",
                "source": "https://commonvoice.mozilla.org/fr",
                "unsub_reason": "too many e-mails",
                "create_timestamp": _ts(T1),
                "update_timestamp": _ts(T1),
            },
            {
                "name": "mozilla-foundation",
                "subscribed": True,
                "format": "H",
                "lang": "fr",
                "source": None,
                "unsub_reason": None,
                "create_timestamp": _ts(T1),
                "update_timestamp": _ts(T2),
            },
        ],
        "waitlists": [
            {
                "name": "relay",
                "source": None,
                "fields": {"geo": "cn"},
                "subscribed": True,
                "unsub_reason": None,
                "create_timestamp": _ts(T1),
                "update_timestamp": _ts(T2),
            },
            {
                "name": "super-product",
                "source": None,
                "fields": {"geo": "fr", "extra": {"nested": [1, 2.5, None]}},
                "subscribed": False,
                "unsub_reason": "not interested",
                "create_timestamp": _ts(T1),
                "update_timestamp": _ts(T2),
            },
            {
                "name": "vpn",
                "source": "https://www.mozilla.org/products/vpn/",
                "fields": {"geo": "ca", "platform": "windows,android"},
                "subscribed": True,
                "unsub_reason": None,
                "create_timestamp": _ts(T1),
                "update_timestamp": _ts(T2),
            },
        ],
        "vpn_waitlist": {"geo": "ca", "platform": "windows,android"},
        "relay_waitlist": {"geo": "cn"},
        "status": "ok",
    }


def _default_fxa() -> dict[str, Any]:
    return {
        "fxa_id": None,
        "primary_email": None,
        "created_date": None,
        "lang": None,
        "first_service": None,
        "account_deleted": False,
    }


def _default_amo(**values: Any) -> dict[str, Any]:
    amo: dict[str, Any] = {
        "add_on_ids": None,
        "display_name": None,
        "email_opt_in": False,
        "language": None,
        "last_login": None,
        "location": None,
        "profile_url": None,
        "user": False,
        "user_id": None,
        "username": None,
        "create_timestamp": None,
        "update_timestamp": None,
    }
    return {**amo, **values}


def _email(
    email_id: uuid.UUID, primary_email: str, created: datetime, **values: Any
) -> dict[str, Any]:
    return {
        "primary_email": primary_email,
        "basket_token": None,
        "double_opt_in": False,
        "sfdc_id": None,
        "first_name": None,
        "last_name": None,
        "mailing_country": None,
        "email_format": values.pop("email_format", None),
        "email_lang": values.pop("email_lang", None),
        "has_opted_out_of_email": False,
        "unsubscribe_reason": None,
        "email_id": str(email_id),
        "create_timestamp": _ts(created),
        "update_timestamp": _ts(created),
        **values,
    }


def expected_nulls(amo_timestamps: str) -> dict[str, Any]:
    """NULL booleans read as false, a NULL format as the default "H" (docs/compatibility.md: reads
    never fail on stored data; v3.3 answered 500 for this contact)."""
    return {
        "amo": _default_amo(
            user_id="7", create_timestamp=amo_timestamps, update_timestamp=amo_timestamps
        ),
        "email": _email(NULLS, "nulls@example.com", T1, email_format="H"),
        "fxa": _default_fxa(),
        "mofo": {"mofo_email_id": None, "mofo_contact_id": None, "mofo_relevant": False},
        "newsletters": [
            {
                "name": "firefox-news",
                "subscribed": False,
                "format": "H",
                "lang": None,
                "source": None,
                "unsub_reason": None,
                "create_timestamp": _ts(T1),
                "update_timestamp": _ts(T1),
            }
        ],
        "waitlists": [],
        "vpn_waitlist": {"geo": None, "platform": None},
        "relay_waitlist": {"geo": None},
        "status": "ok",
    }


def expected_minimal() -> dict[str, Any]:
    return {
        "amo": _default_amo(),
        "email": _email(MINIMAL, "MINIMAL@example.org", T2, email_format="H"),
        "fxa": _default_fxa(),
        "mofo": {"mofo_email_id": None, "mofo_contact_id": None, "mofo_relevant": False},
        "newsletters": [],
        "waitlists": [],
        "vpn_waitlist": {"geo": None, "platform": None},
        "relay_waitlist": {"geo": None},
        "status": "ok",
    }


# --- helpers --------------------------------------------------------------------------------------------


async def ctms(url: str, *args: str) -> Result:
    environment = {"CTMS_DB_URL": url, "CTMS_SECRET_KEY": "adoption-tests"}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=environment)


async def snapshot(url: str) -> dict[str, Any]:
    """Schema (columns, constraints, indexes, revision) and every table's content."""
    async with connected(url) as c:
        columns = await c.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, "
            "character_maximum_length FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        )
        constraints = await c.fetch(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        )
        indexes = await c.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        )
        contents = {}
        for row in await c.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"):
            table = row["tablename"]
            contents[table] = await c.fetchval(
                f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM \"{table}\" t"
            )
    return {
        "columns": [tuple(r) for r in columns],
        "constraints": [tuple(r) for r in constraints],
        "indexes": [tuple(r) for r in indexes],
        "contents": contents,
    }


async def stripe_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    async with connected(url) as c:
        return {
            table: [tuple(r) for r in await c.fetch(f"SELECT * FROM {table} ORDER BY stripe_id")]
            for table in (
                "stripe_customer",
                "stripe_price",
                "stripe_subscription",
                "stripe_subscription_item",
                "stripe_invoice",
                "stripe_invoice_line_item",
            )
        }


async def write_like_the_old_release(url: str, source: Source) -> None:
    """The statements the old release sends, with the columns it knows and no others (it still serves
    traffic while and after the database is adopted)."""
    async with connected(url) as c:
        # psycopg2 sends JSON as an untyped string literal.
        await c.execute(
            "INSERT INTO emails (email_id, primary_email, basket_token, sfdc_id, first_name, "
            "last_name, mailing_country, email_format, email_lang, double_opt_in, "
            "has_opted_out_of_email, unsubscribe_reason, update_timestamp) VALUES "
            f"('{OLD_WRITE}', 'written.by@old.example', NULL, NULL, 'Old', NULL, 'de', 'H', "
            "'de', false, false, NULL, now())"
        )
        await c.execute(
            "INSERT INTO newsletters (email_id, name, subscribed, format, lang, source, "
            f"unsub_reason, update_timestamp) VALUES ('{OLD_WRITE}', 'firefox-news', true, 'H', "
            "'de', NULL, NULL, now())"
        )
        await c.execute(
            "INSERT INTO waitlists (email_id, name, source, fields, subscribed, unsub_reason, "
            f"update_timestamp) VALUES ('{OLD_WRITE}', 'vpn', NULL, "
            """'{"geo": "de", "platform": "linux"}', true, NULL, now())"""
        )
        await c.execute(
            'UPDATE waitlists SET fields = \'{"geo": "at", "platform": "linux"}\', '
            f"update_timestamp = now() WHERE email_id = '{OLD_WRITE}' AND name = 'vpn'"
        )
        await c.execute(f"UPDATE emails SET first_name = 'Older' WHERE email_id = '{OLD_WRITE}'")
        await c.execute(
            "INSERT INTO api_client (client_id, email, enabled, hashed_secret) VALUES "
            "('id_new_by_old', 'new@example.com', true, '$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA')"
        )
        if source.has_acoustic:
            # v3.3 enqueues with its ORM defaults, ignoring a contact already queued ...
            await c.execute(
                "INSERT INTO pending_acoustic (email_id, retry, update_timestamp) "
                f"VALUES ('{OLD_WRITE}', 0, now()) ON CONFLICT DO NOTHING"
            )
            await c.execute(
                "INSERT INTO pending_acoustic (email_id, retry, update_timestamp) "
                f"VALUES ('{OLD_WRITE}', 0, now()) ON CONFLICT DO NOTHING"
            )
            # ... its `resync` command re-queues by upsert, and the sync records a failure.
            await c.execute(
                "INSERT INTO pending_acoustic (email_id) "
                f"VALUES ('{MINIMAL}') ON CONFLICT (email_id) DO UPDATE SET retry = 0, last_error = ''"
            )
            await c.execute(
                "UPDATE pending_acoustic SET retry = retry + 1, last_error = 'Timeout()', "
                f"update_timestamp = now() WHERE email_id = '{OLD_WRITE}'"
            )
        # Its DELETE removes the queue row and the satellites before the contact.
        await c.execute(f"DELETE FROM newsletters WHERE email_id = '{NULLS}'")
        await c.execute(f"DELETE FROM amo WHERE email_id = '{NULLS}'")
        if source.has_acoustic:
            await c.execute(f"DELETE FROM pending_acoustic WHERE email_id = '{NULLS}'")
        await c.execute(f"DELETE FROM emails WHERE email_id = '{NULLS}'")


# --- one test per release -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES, ids=[source.release for source in SOURCES])
async def test_adopted_database_serves_every_contact_as_before_and_the_old_release_still_writes(
    source: Source, new_database: Callable[[], str]
) -> None:
    url = new_database()
    await build_ctms_api_database(url, source)
    await seed(url, source)
    stripe_before = await stripe_rows(url) if source.has_stripe else None

    checked = await ctms(url, "db", "adopt", "--check")
    assert checked.exit_code == 0, checked.output
    assert f"Recognised ctms-api {source.release[:4]}" in checked.output
    assert "Blockers: none." in checked.output

    adopted = await ctms(url, "db", "adopt")
    assert adopted.exit_code == 0, adopted.output
    assert f"now at revision {head()}" in adopted.output
    assert "Rows per table (before → after)" in adopted.output
    assert "Waitlists: fields json → jsonb … (3 rows)" in adopted.output  # progress, plain lines
    assert "@" not in adopted.output + checked.output  # no address in the output

    db_check = await ctms(url, "db", "check")
    assert db_check.exit_code == 0, db_check.output

    async with connected(url) as c:
        amo_created = await c.fetchval(
            "SELECT create_timestamp FROM amo WHERE email_id = $1", NULLS
        )
        clients = {
            row["client_id"]: (row["enabled"], row["last_access"], row["hashed_secret"][:9])
            for row in await c.fetch("SELECT * FROM api_client")
        }
        queue = [
            tuple(row)
            for row in await c.fetch(
                "SELECT email_id, retry, last_error, version, operation, deletion, "
                "next_attempt_at, claimed_until FROM pending_acoustic ORDER BY email_id"
            )
        ]
        fields = set(await c.fetch("SELECT tablename, field FROM acoustic_field"))
        mapping = dict(await c.fetch("SELECT source, destination FROM acoustic_newsletter_mapping"))
        roles = await c.fetchval("SELECT count(*) FROM roles WHERE name = 'admin'")

    last_access = LAST_ACCESS if source.has_last_access else None
    assert clients == {
        "id_basket": (True, last_access, "$argon2id"),
        "id_unset": (False, last_access, "$argon2id"),
        "id_off": (False, last_access, "$argon2id"),
    }
    assert roles == 1
    if source.has_acoustic:
        assert queue == [
            (MINIMAL, 7, "Timeout()", 1, "sync", None, None, None),
            (FULL, 3, "HTTPError('500 Server Error')", 1, "sync", None, None, None),
            (NULLS, 0, "", 1, "sync", None, None, None),
        ]
        assert ("main", "x" * 255) in fields
        assert len(fields) == 4
        assert mapping == {
            "mozilla-foundation": "sub_mozilla_foundation",
            "my-news": "sub_my_news",
        }
    else:
        assert queue == []
        seeds = adoption._seed_of("0005_acoustic_sync")
        assert len(fields) == len(seeds.MAIN_FIELDS) + len(seeds.WAITLIST_FIELDS)
        assert mapping == seeds.NEWSLETTER_MAPPING
    if stripe_before is not None:
        assert await stripe_rows(url) == stripe_before

    async with postgres_app(url) as app:
        token = await app.http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            auth=("id_basket", BASKET_SECRET),
        )
        assert token.status_code == 200, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        refused = await app.http.post(
            "/token", data={"grant_type": "client_credentials"}, auth=("id_unset", BASKET_SECRET)
        )
        assert refused.status_code == 400

        for email_id, expected in (
            (FULL, expected_full()),
            (NULLS, expected_nulls(_ts(amo_created))),
            (MINIMAL, expected_minimal()),
        ):
            response = await app.http.get(f"/ctms/{email_id}", headers=headers)
            assert response.status_code == 200, response.text
            assert response.json() == expected
        found = await app.http.get(
            "/ctms", params={"primary_email": "mozilla.fan@example.com"}, headers=headers
        )
        assert [c["email"]["email_id"] for c in found.json()] == [str(FULL)]

        await write_like_the_old_release(url, source)
        written = await app.http.get(f"/ctms/{OLD_WRITE}", headers=headers)
        assert written.status_code == 200, written.text
        assert written.json()["email"]["first_name"] == "Older"
        assert written.json()["vpn_waitlist"] == {"geo": "at", "platform": "linux"}
        assert (await app.http.get(f"/ctms/{NULLS}", headers=headers)).status_code == 404

    if source.has_acoustic:
        async with connected(url) as c:
            queued = await c.fetchrow(
                "SELECT retry, last_error, version, operation FROM pending_acoustic "
                "WHERE email_id = $1",
                OLD_WRITE,
            )
            assert tuple(queued) == (1, "Timeout()", 1, "sync")
            assert await c.fetchval(
                "SELECT (retry, last_error) = (0, '') FROM pending_acoustic WHERE email_id = $1",
                MINIMAL,
            )


# --- edge cases (v3.3, the release with the most to convert) --------------------------------------------


async def test_check_reports_every_kind_of_blocker_and_writes_nothing(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    await build_ctms_api_database(url, V3_3)
    await seed(url, V3_3)
    duplicate = uuid.UUID("00000000-0000-4000-8000-000000000001")
    async with connected(url) as c:
        await c.execute(
            "INSERT INTO emails (email_id, primary_email) VALUES ($1, 'mozilla.fan@example.com')",
            duplicate,
        )
        await c.execute(
            "INSERT INTO acoustic_field (tablename, field) VALUES ('main', $1)", "y" * 256
        )
        await c.execute(
            "INSERT INTO waitlists (email_id, name, fields, subscribed) "
            """VALUES ($1, 'nul', '{"geo": "\\u0000"}', true), ($2, 'unset', '{}', NULL)""",
            MINIMAL,
            NULLS,
        )
        await c.execute(
            "INSERT INTO api_client (client_id, email, enabled, hashed_secret) "
            "VALUES ('id_plain', 'plain@example.com', true, 'not-a-hash')"
        )
    before = await snapshot(url)

    checked = await ctms(url, "db", "adopt", "--check")
    assert checked.exit_code == 1, checked.output
    output = checked.output
    assert "Blockers (5)" in output
    assert (
        "primary e-mails equal ignoring case (contacts that share an address); merge or delete the duplicates: 1"
        in output
    )
    assert f"{duplicate} = {FULL}" in output
    assert "acoustic_field.field values longer than 255 characters: 1" in output
    assert "waitlists.fields holding a \\u0000 character (jsonb cannot store it): 1" in output
    assert "waitlists.subscribed NULL" in output and str(NULLS) in output
    assert "not argon2" in output and "id_plain" in output
    assert "api_client.enabled NULL → false (the old service refused them): 1 rows" in output
    assert "pending_acoustic.last_error NULL → '' (no error): 1 rows" in output
    assert "[todo] Waitlists: fields json → jsonb" in output
    assert "@" not in output
    assert await snapshot(url) == before

    refused = await ctms(url, "db", "adopt")
    assert refused.exit_code == 1
    assert "Adoption blocked" in refused.output
    assert await snapshot(url) == before


class _FailingProgress(adoption.SilentProgress):
    """Interrupts the adoption after the first batch of the step titled `title`."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.current = ""

    def step_started(self, title: str, total_rows: int | None) -> None:
        self.current = title

    def rows_done(self, count: int) -> None:
        if self.current == self.title:
            raise RuntimeError("interrupted")


async def test_an_interrupted_adoption_finishes_when_run_again_and_then_is_a_no_op(
    new_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database()
    await build_ctms_api_database(url, V3_3)
    await seed(url, V3_3)
    monkeypatch.setattr(adoption, "BATCH_ROWS", 1)  # one batch per waitlist row

    with pytest.raises(RuntimeError, match="interrupted"):
        await asyncio.to_thread(adopt, url, _FailingProgress("Waitlists: fields json → jsonb"))
    half_way = plan_adoption(url)
    assert half_way.release is not None and half_way.release.name == "v3.3.0"
    done = {step.title: step.done for step in half_way.steps}
    assert done["Contacts: unique index on lower(primary_email)"] is True
    assert done["Waitlists: fields json → jsonb"] is False

    # The old release goes on writing while the conversion is half done.
    async with connected(url) as c:
        await c.execute(
            "INSERT INTO waitlists (email_id, name, fields, subscribed) "
            f"""VALUES ('{MINIMAL}', 'relay', '{{"geo": "es"}}', true)"""
        )

    finished = await ctms(url, "db", "adopt")
    assert finished.exit_code == 0, finished.output
    assert "[done] Contacts: unique index on lower(primary_email)" in finished.output
    assert "[todo] Waitlists: fields json → jsonb" in finished.output
    steps_run = finished.output.split("Time per step:")[1]
    assert "Waitlists: fields json → jsonb" in steps_run
    assert "Contacts: unique index" not in steps_run  # done the first time
    assert check(url) == []
    async with connected(url) as c:
        fields = await c.fetchval(
            "SELECT fields FROM waitlists WHERE email_id = $1 AND name = 'relay'", MINIMAL
        )
        assert json.loads(fields) == {"geo": "es"}
        assert await c.fetchval("SELECT count(*) FROM waitlists") == 4

    before = await snapshot(url)
    again = await ctms(url, "db", "adopt")
    assert again.exit_code == 0, again.output
    assert "Nothing to adopt: the database is ours" in again.output
    assert await snapshot(url) == before


async def test_unknown_revision_is_refused_and_nothing_is_written(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    await build_ctms_api_database(url, V3_3)
    async with connected(url) as c:
        await c.execute("UPDATE alembic_version SET version_num = '2b00e4069aea'")
    before = await snapshot(url)

    for args in (("db", "adopt", "--check"), ("db", "adopt")):
        result = await ctms(url, *args)
        assert result.exit_code == 1
        assert "unknown revision '2b00e4069aea'" in result.output
        assert "v3.3.0 (375dd57cfed1)" in result.output
    assert await snapshot(url) == before


async def test_a_database_that_is_not_ctms_apis_is_refused(new_database: Callable[[], str]) -> None:
    empty = new_database()
    async with connected(empty) as c:
        await c.execute("CREATE TABLE things (id integer)")
    result = await ctms(empty, "db", "adopt")
    assert result.exit_code == 1
    assert "not a ctms-api database: it has no alembic_version table" in result.output

    # The right revision on the wrong tables.
    impostor = new_database()
    await build_ctms_api_database(impostor, V3_3)
    async with connected(impostor) as c:
        await c.execute("DROP TABLE mofo")
    before = await snapshot(impostor)
    with pytest.raises(AdoptionRefusedError, match=r"says ctms-api v3\.3\.0.*missing: mofo"):
        await asyncio.to_thread(plan_adoption, impostor)
    assert (await ctms(impostor, "db", "adopt")).exit_code == 1
    assert await snapshot(impostor) == before


class _DuplicateWriter(adoption.SilentProgress):
    """The old release writing an address equal to another ignoring case just before the unique index
    is built (after the blocker check passed)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def step_started(self, title: str, total_rows: int | None) -> None:
        if title == "Contacts: unique index on lower(primary_email)":
            _run(
                _execute(
                    to_asyncpg_dsn(self.url),
                    "INSERT INTO emails (email_id, primary_email) VALUES "
                    "('00000000-0000-4000-8000-000000000002', 'minimal@EXAMPLE.org')",
                )
            )


async def test_a_duplicate_written_during_the_index_build_stops_adoption_until_it_is_fixed(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    await build_ctms_api_database(url, V3_3)
    await seed(url, V3_3)

    with pytest.raises(AdoptionRefusedError, match="equal to another ignoring case was written"):
        await asyncio.to_thread(adopt, url, _DuplicateWriter(url))
    async with connected(url) as c:  # no invalid index left behind
        assert (
            await c.fetchval("SELECT to_regclass('idx_email_primary_unique_email_lower')") is None
        )
    blocked = await asyncio.to_thread(plan_adoption, url)
    assert [blocker.count for blocker in blocked.blockers] == [1]
    assert blocked.blockers[0].examples == (f"00000000-0000-4000-8000-000000000002 = {MINIMAL}",)

    async with connected(url) as c:
        await c.execute(
            "DELETE FROM emails WHERE email_id = '00000000-0000-4000-8000-000000000002'"
        )
    finished = await ctms(url, "db", "adopt")
    assert finished.exit_code == 0, finished.output
    assert check(url) == []


async def test_adoption_waits_for_a_busy_table_without_holding_up_the_old_release(
    new_database: Callable[[], str],
) -> None:
    """A step whose lock conflicts with a long transaction of the old release gives up after
    `lock_timeout` and tries again, so the old release's other statements on that table are not queued
    behind it; adoption completes once the transaction ends."""
    url = new_database()
    await build_ctms_api_database(url, V3_3)
    await seed(url, V3_3)
    async with connected(url) as long_transaction, connected(url) as writer:
        await long_transaction.execute("BEGIN")
        await long_transaction.execute(
            "UPDATE waitlists SET source = source WHERE email_id = $1", FULL
        )
        adoption_run = asyncio.create_task(asyncio.to_thread(adopt, url))
        for _ in range(400):  # until a step waits for the table the transaction holds
            if await writer.fetchval(
                "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
                "WHERE application_name = 'ctms-adopt' AND NOT granted "
                "AND relation = 'waitlists'::regclass"
            ):
                break
            await asyncio.sleep(0.025)
        else:
            raise AssertionError("adoption never waited for the waitlists table")

        # Without the lock timeout this INSERT would wait behind the step until the transaction ends.
        await asyncio.wait_for(
            writer.execute(
                "INSERT INTO waitlists (email_id, name, fields, subscribed) "
                f"""VALUES ('{MINIMAL}', 'relay', '{{"geo": "es"}}', true)"""
            ),
            timeout=10,
        )
        assert not adoption_run.done()
        await long_transaction.execute("COMMIT")
        summary = await adoption_run
    assert summary.revision_after == head()
    assert check(url) == []


async def test_on_one_of_our_databases_adopt_only_applies_our_missing_migrations(
    new_database: Callable[[], str],
) -> None:
    url = new_database()
    await asyncio.to_thread(upgrade, url, "0004_stripe")

    checked = await ctms(url, "db", "adopt", "--check")
    assert checked.exit_code == 0, checked.output
    assert "already ours (revision 0004_stripe): nothing to adopt." in checked.output
    assert current(url) == "0004_stripe"

    adopted = await ctms(url, "db", "adopt")
    assert adopted.exit_code == 0, adopted.output
    assert f"Nothing to adopt: the database is ours, now at {head()}." in adopted.output
    assert current(url) == head()
