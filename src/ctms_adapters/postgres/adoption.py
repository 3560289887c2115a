"""Adopting a ctms-api database: convert it in place, online, to the schema of our revision
`0005_acoustic_sync`, stamp that revision, then let our own migrations take it to head.

The design and its reasons are in docs/adr/0005-adopting-a-ctms-api-database.md; what an operator does
around it is in docs/cutover.md. In short:

* The release is recognised by its `alembic_version` AND the shape of its tables; anything else is refused
  before a single write.
* Blockers (data our schema cannot hold as it is) are looked for first; any blocker refuses the adoption,
  `--check` lists them with counts and a few `email_id`s (never an address).
* `STEPS` is the fixed list of what to do; each step says which releases need it and checks whether it is
  done already, so a run after an interruption resumes and a run on an adopted database does nothing.
* Online-safe: DDL that needs a strong lock takes it with a short `lock_timeout` and retries, indexes are
  built `CONCURRENTLY`, columns are added without a rewrite, NOT NULL goes through a validated CHECK, and
  backfills commit in batches. The old release keeps working on the result (docs/cutover.md lists the
  exceptions).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import asyncpg
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from ctms_adapters.postgres import migrations
from ctms_adapters.postgres.engine import connect_args

# The revision whose schema adoption produces; later revisions are applied by `migrations.upgrade`.
ADOPTED_REVISION = "0005_acoustic_sync"

# How long a DDL statement may wait for its lock (while it waits, the old service's statements queue
# behind it), how often it tries again, and the size of each committed backfill batch.
LOCK_TIMEOUT_MS = 500
LOCK_ATTEMPTS = 60
BATCH_ROWS = 20_000
EXAMPLES = 5

Result = TypeVar("Result")


class AdoptionRefusedError(Exception):
    """The database is not one adoption can take: nothing was written."""


class AdoptionProgress(Protocol):
    """What a long adoption tells the person running it (the CLI draws progress bars from it)."""

    def step_started(self, title: str, total_rows: int | None) -> None: ...

    def rows_done(self, count: int) -> None:
        """`count` more rows of the current step are done."""

    def step_finished(self, title: str, seconds: float) -> None: ...


class SilentProgress:
    def step_started(self, title: str, total_rows: int | None) -> None:
        pass

    def rows_done(self, count: int) -> None:
        pass

    def step_finished(self, title: str, seconds: float) -> None:
        pass


# --- releases -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    name: str
    revision: str
    # Table -> the columns its migrations create (the "shape" that must be there).
    tables: dict[str, tuple[str, ...]]

    @property
    def has_acoustic(self) -> bool:
        return "pending_acoustic" in self.tables

    @property
    def has_stripe(self) -> bool:
        return "stripe_customer" in self.tables


_TS = ("create_timestamp", "update_timestamp")
_V3_3_TABLES: dict[str, tuple[str, ...]] = {
    "emails": (
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
        *_TS,
    ),
    "amo": (
        "id",
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
        *_TS,
    ),
    "fxa": (
        "id",
        "email_id",
        "fxa_id",
        "primary_email",
        "created_date",
        "lang",
        "first_service",
        "account_deleted",
        *_TS,
    ),
    "mofo": ("id", "email_id", "mofo_email_id", "mofo_contact_id", "mofo_relevant", *_TS),
    "newsletters": (
        "id",
        "email_id",
        "name",
        "subscribed",
        "format",
        "lang",
        "source",
        "unsub_reason",
        *_TS,
    ),
    "waitlists": ("id", "email_id", "name", "source", "subscribed", "unsub_reason", "fields", *_TS),
    "api_client": ("client_id", "email", "enabled", "hashed_secret", *_TS),
    "pending_acoustic": ("id", "email_id", "retry", "last_error", *_TS),
    "acoustic_field": ("tablename", "field"),
    "acoustic_newsletter_mapping": ("source", "destination"),
    "stripe_customer": ("stripe_id", "fxa_id", "deleted", *_TS),
    "stripe_price": ("stripe_id", "stripe_product_id", "active", *_TS),
    "stripe_subscription": ("stripe_id", "stripe_customer_id", "status", *_TS),
    "stripe_subscription_item": ("stripe_id", "stripe_subscription_id", "stripe_price_id", *_TS),
    "stripe_invoice": ("stripe_id", "stripe_customer_id", "total", *_TS),
    "stripe_invoice_line_item": ("stripe_id", "stripe_invoice_id", "stripe_price_id", *_TS),
}
_ACOUSTIC_TABLES = ("pending_acoustic", "acoustic_field", "acoustic_newsletter_mapping")
_STRIPE_TABLES = tuple(name for name in _V3_3_TABLES if name.startswith("stripe_"))
_V4_TABLES = {name: cols for name, cols in _V3_3_TABLES.items() if name not in _ACOUSTIC_TABLES}
_V5_0_TABLES = {name: cols for name, cols in _V4_TABLES.items() if name not in _STRIPE_TABLES}
_V5_1_TABLES = {**_V5_0_TABLES, "api_client": (*_V5_0_TABLES["api_client"], "last_access")}

# Every ctms-api release whose schema changed (the dumps and their README are in
# tests/fixtures/ctms_api_schemas/).
RELEASES = (
    Release("v3.3.0", "375dd57cfed1", _V3_3_TABLES),
    Release("v4.0.0", "432e8585fe17", _V4_TABLES),
    Release("v5.0.0", "cea70cf9d626", _V5_0_TABLES),
    Release("v5.1.0–v5.2.x", "f2041a868dca", _V5_1_TABLES),
    Release("v6.0.x", "fd04e56b249e", _V5_1_TABLES),
)
_RELEASE_BY_REVISION = {release.revision: release for release in RELEASES}


# --- what --check and adopt report ---------------------------------------------------------------------


@dataclass(frozen=True)
class Blocker:
    """Data our schema cannot take as it is: the operator fixes it (docs/cutover.md says how)."""

    problem: str
    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class DataChange:
    """Stored values a step rewrites, with the meaning they keep."""

    change: str
    count: int


@dataclass(frozen=True)
class PlannedStep:
    title: str
    done: bool


@dataclass
class AdoptionPlan:
    release: Release | None  # None: the database is ours already
    revision: str
    blockers: list[Blocker] = field(default_factory=list)
    data_changes: list[DataChange] = field(default_factory=list)
    steps: list[PlannedStep] = field(default_factory=list)

    @property
    def already_adopted(self) -> bool:
        return self.release is None

    @property
    def can_proceed(self) -> bool:
        return not self.blockers


@dataclass
class AdoptionSummary:
    plan: AdoptionPlan
    rows_before: dict[str, int] = field(default_factory=dict)
    rows_after: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    revision_after: str | None = None


# --- entry points (synchronous, like `migrations`) ------------------------------------------------------


def plan_adoption(url: str) -> AdoptionPlan:
    """What `adopt` would do on the database at `url`; writes nothing. Raises AdoptionRefusedError."""
    return _on_connection(url, _plan)


def adopt(url: str, progress: AdoptionProgress | None = None) -> AdoptionSummary:
    """Adopt the database at `url` (see the module docstring), then migrate it to our head revision.

    Refuses (AdoptionRefusedError, nothing written) an unknown database or one with blockers. On a
    database that is already ours it only upgrades it to head, if needed.
    """
    reporter = progress or SilentProgress()

    async def run(connection: asyncpg.Connection) -> AdoptionSummary:
        plan = await _plan(connection)
        summary = AdoptionSummary(plan=plan)
        if plan.already_adopted:
            return summary
        if plan.blockers:
            raise AdoptionRefusedError(
                "adoption blocked by the data; `ctms db adopt --check` lists what to fix"
            )
        assert plan.release is not None
        summary.rows_before = await _row_counts(connection)
        for step in STEPS:
            if not step.applies_to(plan.release) or await step.is_done(connection, plan.release):
                continue
            started = time.monotonic()
            reporter.step_started(step.title, await step.rows_to_do(connection))
            await step.run(connection, reporter)
            summary.step_seconds[step.title] = time.monotonic() - started
            reporter.step_finished(step.title, summary.step_seconds[step.title])
        await connection.execute("UPDATE alembic_version SET version_num = $1", ADOPTED_REVISION)
        return summary

    summary = _on_connection(url, run)
    if migrations.current(url) != migrations.head():
        title = f"Apply our migrations after {ADOPTED_REVISION} (ctms db upgrade)"
        started = time.monotonic()
        reporter.step_started(title, None)
        migrations.upgrade(url)
        summary.step_seconds[title] = time.monotonic() - started
        reporter.step_finished(title, summary.step_seconds[title])
    summary.revision_after = migrations.current(url)
    if not summary.plan.already_adopted:
        summary.rows_after = _on_connection(url, _row_counts)
    return summary


def _on_connection(
    url: str, work: Callable[[asyncpg.Connection], Coroutine[Any, Any, Result]]
) -> Result:
    async def run() -> Result:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        arguments = connect_args("ctms-adopt")
        connection = await asyncpg.connect(
            dsn,
            timeout=arguments["timeout"],
            server_settings={**arguments["server_settings"], "statement_timeout": "0"},
        )
        try:
            return await work(connection)
        finally:
            await connection.close()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctms-adopt") as executor:
        return executor.submit(asyncio.run, run()).result()


# --- recognising the database ---------------------------------------------------------------------------


async def _plan(connection: asyncpg.Connection) -> AdoptionPlan:
    revision = await _revision(connection)
    if revision in _our_revisions():
        return AdoptionPlan(release=None, revision=revision)
    release = _RELEASE_BY_REVISION.get(revision)
    if release is None:
        known = ", ".join(f"{r.name} ({r.revision})" for r in RELEASES)
        raise AdoptionRefusedError(
            f"unknown revision {revision!r} in alembic_version: adopt knows the ctms-api releases "
            f"{known} and our own revisions; nothing was changed"
        )
    await _check_shape(connection, release)
    plan = AdoptionPlan(release=release, revision=revision)
    plan.blockers = await _blockers(connection, release)
    plan.data_changes = await _data_changes(connection, release)
    plan.steps = [
        PlannedStep(step.title, await step.is_done(connection, release))
        for step in STEPS
        if step.applies_to(release)
    ]
    return plan


def _our_revisions() -> set[str]:
    scripts = ScriptDirectory.from_config(migrations.alembic_config())
    return {script.revision for script in scripts.walk_revisions()}


async def _revision(connection: asyncpg.Connection) -> str:
    if not await _table_exists(connection, "alembic_version"):
        raise AdoptionRefusedError(
            "not a ctms-api database: it has no alembic_version table; nothing was changed"
        )
    rows = await connection.fetch("SELECT version_num FROM alembic_version")
    if len(rows) != 1:
        raise AdoptionRefusedError(
            f"not a ctms-api database: alembic_version holds {len(rows)} revisions; "
            "nothing was changed"
        )
    return str(rows[0]["version_num"])


async def _check_shape(connection: asyncpg.Connection, release: Release) -> None:
    rows = await connection.fetch(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema()"
    )
    present: dict[str, set[str]] = {}
    for row in rows:
        present.setdefault(row["table_name"], set()).add(row["column_name"])
    missing = [
        f"{table}.{column}" if table in present else table
        for table, columns in release.tables.items()
        for column in columns
        if column not in present.get(table, set())
    ]
    if missing:
        listed = ", ".join(sorted(set(missing))[:10])
        raise AdoptionRefusedError(
            f"alembic_version says ctms-api {release.name}, but the tables differ from that "
            f"release's (missing: {listed}); not a database adopt can take, nothing was changed"
        )


# --- blockers and data changes -------------------------------------------------------------------------


async def _blockers(connection: asyncpg.Connection, release: Release) -> list[Blocker]:
    blockers: list[Blocker] = []

    if not await _index_is_valid(connection, "idx_email_primary_unique_email_lower"):
        groups = await connection.fetch(
            "SELECT array_agg(email_id::text ORDER BY email_id) AS ids, count(*) OVER () AS total "
            "FROM emails GROUP BY lower(primary_email) HAVING count(*) > 1 "
            "ORDER BY min(email_id::text) LIMIT $1",
            EXAMPLES,
        )
        if groups:
            blockers.append(
                Blocker(
                    "primary e-mails equal ignoring case (contacts that share an address); "
                    "merge or delete the duplicates",
                    int(groups[0]["total"]),
                    tuple(" = ".join(group["ids"]) for group in groups),
                )
            )

    for table, column, limit in _NARROWED_COLUMNS:
        if release.has_acoustic and await _column_length(connection, table, column) != limit:
            rows = await connection.fetch(
                f'SELECT "{column}"::text AS value, count(*) OVER () AS total FROM "{table}" '  # noqa: S608
                f'WHERE length("{column}") > $1 LIMIT $2',
                limit,
                EXAMPLES,
            )
            if rows:
                blockers.append(
                    Blocker(
                        f"{table}.{column} values longer than {limit} characters",
                        int(rows[0]["total"]),
                        tuple(row["value"][:40] + "…" for row in rows),
                    )
                )

    if await _column_type(connection, "waitlists", "fields") == "json":
        # jsonb cannot hold a NUL character; the candidates found by text are confirmed one by one.
        candidates = await connection.fetch(
            "SELECT id, email_id::text AS email_id FROM waitlists "
            r"WHERE strpos(fields::text, '\u0000') > 0"
        )
        failing = [
            row["email_id"]
            for row in candidates
            if not await _casts_to_jsonb(connection, row["id"])
        ]
        if failing:
            blockers.append(
                Blocker(
                    "waitlists.fields holding a \\u0000 character (jsonb cannot store it)",
                    len(failing),
                    tuple(failing[:EXAMPLES]),
                )
            )

    if not await _is_not_null(connection, "waitlists", "subscribed"):
        rows = await connection.fetch(
            "SELECT email_id::text AS email_id, count(*) OVER () AS total FROM waitlists "
            "WHERE subscribed IS NULL ORDER BY email_id LIMIT $1",
            EXAMPLES,
        )
        if rows:
            blockers.append(
                Blocker(
                    "waitlists.subscribed NULL (the old service could not read these contacts); "
                    "set true or false",
                    int(rows[0]["total"]),
                    tuple(row["email_id"] for row in rows),
                )
            )

    rows = await connection.fetch(
        "SELECT client_id, count(*) OVER () AS total FROM api_client "
        "WHERE hashed_secret NOT LIKE '$argon2%' ORDER BY client_id LIMIT $1",
        EXAMPLES,
    )
    if rows:
        blockers.append(
            Blocker(
                "API clients whose secret hash is not argon2 (their credentials could not be "
                "verified); rotate their secret with the old release or delete them",
                int(rows[0]["total"]),
                tuple(row["client_id"] for row in rows),
            )
        )
    return blockers


async def _data_changes(connection: asyncpg.Connection, release: Release) -> list[DataChange]:
    changes: list[DataChange] = []
    if not await _is_not_null(connection, "api_client", "enabled"):
        count = await connection.fetchval("SELECT count(*) FROM api_client WHERE enabled IS NULL")
        if count:
            changes.append(
                DataChange("api_client.enabled NULL → false (the old service refused them)", count)
            )
    if release.has_acoustic and not await _is_not_null(
        connection, "pending_acoustic", "last_error"
    ):
        count = await connection.fetchval(
            "SELECT count(*) FROM pending_acoustic WHERE last_error IS NULL"
        )
        if count:
            changes.append(DataChange("pending_acoustic.last_error NULL → '' (no error)", count))
    if await _column_type(connection, "waitlists", "fields") == "json":
        count = await connection.fetchval("SELECT count(*) FROM waitlists")
        changes.append(DataChange("waitlists.fields json → jsonb (same objects)", count))
    return changes


async def _casts_to_jsonb(connection: asyncpg.Connection, waitlist_id: int) -> bool:
    try:
        await connection.fetchval("SELECT fields::jsonb FROM waitlists WHERE id = $1", waitlist_id)
    except asyncpg.PostgresError:
        return False
    return True


# --- catalog questions ----------------------------------------------------------------------------------


async def _table_exists(connection: asyncpg.Connection, table: str) -> bool:
    return bool(await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


async def _column_type(connection: asyncpg.Connection, table: str, column: str) -> str | None:
    value = await connection.fetchval(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
        table,
        column,
    )
    return None if value is None else str(value)


async def _column_exists(connection: asyncpg.Connection, table: str, column: str) -> bool:
    return await _column_type(connection, table, column) is not None


async def _column_length(connection: asyncpg.Connection, table: str, column: str) -> int | None:
    value = await connection.fetchval(
        "SELECT character_maximum_length FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
        table,
        column,
    )
    return None if value is None else int(value)


async def _column_default(connection: asyncpg.Connection, table: str, column: str) -> str | None:
    value = await connection.fetchval(
        "SELECT column_default FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
        table,
        column,
    )
    return None if value is None else str(value)


async def _is_not_null(connection: asyncpg.Connection, table: str, column: str) -> bool:
    value = await connection.fetchval(
        "SELECT is_nullable FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
        table,
        column,
    )
    return bool(value == "NO")


async def _constraint_exists(connection: asyncpg.Connection, table: str, name: str) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) "
            "AND conname = $2)",
            table,
            name,
        )
    )


async def _index_exists(connection: asyncpg.Connection, name: str) -> bool:
    return await _table_exists(connection, name)


async def _index_is_valid(connection: asyncpg.Connection, name: str) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)), "
            "false)",
            name,
        )
    )


async def _row_counts(connection: asyncpg.Connection) -> dict[str, int]:
    names = await connection.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
    )
    return {
        row["tablename"]: int(
            await connection.fetchval(f'SELECT count(*) FROM "{row["tablename"]}"')  # noqa: S608
        )
        for row in names
    }


# --- the mechanics every step shares --------------------------------------------------------------------


async def _briefly_locking(connection: asyncpg.Connection, *statements: str) -> None:
    """Run `statements` in one transaction whose locks are waited for at most LOCK_TIMEOUT_MS; on a
    timeout, roll back and try again later. A statement waiting for a lock makes every later statement
    on that table wait behind it, so the wait must stay short: the old service then sees a pause of at
    most that long."""
    for attempt in range(LOCK_ATTEMPTS):
        try:
            async with connection.transaction():
                await connection.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
                for statement in statements:
                    await connection.execute(statement)
            return
        except asyncpg.LockNotAvailableError:
            await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
    raise RuntimeError(
        f"could not take a lock within {LOCK_TIMEOUT_MS} ms in {LOCK_ATTEMPTS} attempts: "
        f"{statements[0][:80]}; run adopt again when the database is less busy"
    )


async def _build_index(connection: asyncpg.Connection, name: str, definition: str) -> None:
    """`CREATE [UNIQUE] INDEX CONCURRENTLY` (outside a transaction; it blocks no reads or writes),
    dropping first what an interrupted build left behind (an invalid index)."""
    if await _index_exists(connection, name) and not await _index_is_valid(connection, name):
        await connection.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
    await connection.execute(definition)


async def _set_not_null(connection: asyncpg.Connection, table: str, column: str) -> None:
    """NOT NULL without a long lock: a CHECK added NOT VALID, validated (no write is blocked), then
    SET NOT NULL, which trusts the valid CHECK instead of scanning, and the CHECK dropped."""
    check = f"{table}_{column}_not_null"
    if not await _constraint_exists(connection, table, check):
        await _briefly_locking(
            connection,
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{check}" CHECK ("{column}" IS NOT NULL) NOT VALID',
        )
    await connection.execute(f'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{check}"')
    await _briefly_locking(
        connection,
        f'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET NOT NULL',
        f'ALTER TABLE "{table}" DROP CONSTRAINT "{check}"',
    )


async def _backfill(
    connection: asyncpg.Connection,
    progress: AdoptionProgress,
    table: str,
    assignment: str,
    condition: str,
) -> None:
    """`UPDATE table SET assignment WHERE condition`, in committed batches of BATCH_ROWS ids."""
    bounds = await connection.fetchrow(f'SELECT min(id) AS low, max(id) AS high FROM "{table}"')  # noqa: S608
    if bounds is None or bounds["low"] is None:
        return
    low, high = int(bounds["low"]), int(bounds["high"])
    while low <= high:
        status = await connection.execute(
            f'UPDATE "{table}" SET {assignment} WHERE id >= $1 AND id < $2 AND ({condition})',  # noqa: S608
            low,
            low + BATCH_ROWS,
        )
        progress.rows_done(int(status.split()[-1]))
        low += BATCH_ROWS


# --- the steps ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    title: str
    applies_to: Callable[[Release], bool]
    is_done: Callable[[asyncpg.Connection, Release], Awaitable[bool]]
    run: Callable[[asyncpg.Connection, AdoptionProgress], Awaitable[None]]
    # The rows a long step will go through (for its progress bar); None when it is quick.
    rows_to_do: Callable[[asyncpg.Connection], Awaitable[int | None]] = lambda _connection: _none()


async def _none() -> int | None:
    return None


def _every_release(_release: Release) -> bool:
    return True


def _with_acoustic(release: Release) -> bool:
    return release.has_acoustic


def _without_acoustic(release: Release) -> bool:
    return not release.has_acoustic


def _with_stripe(release: Release) -> bool:
    return release.has_stripe


def _without_stripe(release: Release) -> bool:
    return not release.has_stripe


def _without_unique_lower_email(release: Release) -> bool:
    return release.revision != "fd04e56b249e"


def _is_v6(release: Release) -> bool:
    return release.revision == "fd04e56b249e"


# Columns ctms-api left unbounded that ours limit (values over the limit are a blocker).
_NARROWED_COLUMNS = (
    ("acoustic_field", "tablename", 255),
    ("acoustic_field", "field", 255),
    ("acoustic_newsletter_mapping", "source", 255),
    ("acoustic_newsletter_mapping", "destination", 255),
)

# Our tables that no ctms-api release has, as revision 0005 creates them (a frozen copy, like a
# migration: adoption must keep producing revision 0005's schema whatever later revisions change).
_CREATE_ROLES_AND_AUDIT = (
    "CREATE TABLE IF NOT EXISTS roles (id serial NOT NULL, name varchar(255) NOT NULL, "
    "description text, CONSTRAINT roles_pkey PRIMARY KEY (id), "
    "CONSTRAINT roles_name_key UNIQUE (name))",
    "CREATE TABLE IF NOT EXISTS permissions (id serial NOT NULL, name varchar(255) NOT NULL, "
    "description text, CONSTRAINT permissions_pkey PRIMARY KEY (id), "
    "CONSTRAINT permissions_name_key UNIQUE (name))",
    "CREATE TABLE IF NOT EXISTS role_permissions (id serial NOT NULL, role_id integer NOT NULL, "
    "permission_id integer NOT NULL, CONSTRAINT role_permissions_pkey PRIMARY KEY (id), "
    "CONSTRAINT role_permissions_role_id_permission_id_key UNIQUE (role_id, permission_id), "
    "CONSTRAINT role_permissions_role_id_fkey FOREIGN KEY (role_id) REFERENCES roles (id) "
    "ON DELETE CASCADE, CONSTRAINT role_permissions_permission_id_fkey FOREIGN KEY (permission_id) "
    "REFERENCES permissions (id) ON DELETE CASCADE)",
    "CREATE TABLE IF NOT EXISTS api_client_roles (id serial NOT NULL, "
    "api_client_id varchar(255) NOT NULL, role_id integer NOT NULL, "
    "CONSTRAINT api_client_roles_pkey PRIMARY KEY (id), "
    "CONSTRAINT api_client_roles_api_client_id_role_id_key UNIQUE (api_client_id, role_id), "
    "CONSTRAINT api_client_roles_api_client_id_fkey FOREIGN KEY (api_client_id) "
    "REFERENCES api_client (client_id) ON DELETE CASCADE, "
    "CONSTRAINT api_client_roles_role_id_fkey FOREIGN KEY (role_id) REFERENCES roles (id) "
    "ON DELETE CASCADE)",
    "CREATE TABLE IF NOT EXISTS erasure_audit (id serial NOT NULL, "
    "erased_at timestamptz NOT NULL, client_id varchar(255), email_id uuid NOT NULL, "
    "email_hash varchar(64) NOT NULL, CONSTRAINT erasure_audit_pkey PRIMARY KEY (id))",
    "CREATE INDEX IF NOT EXISTS ix_erasure_audit_erased_at ON erasure_audit (erased_at)",
    "CREATE INDEX IF NOT EXISTS ix_erasure_audit_email_hash ON erasure_audit (email_hash)",
)

_TIMESTAMPS = (
    "create_timestamp timestamptz DEFAULT now() NOT NULL, "
    "update_timestamp timestamptz DEFAULT now() NOT NULL"
)
_CREATE_ACOUSTIC = (
    "CREATE TABLE IF NOT EXISTS pending_acoustic (id serial NOT NULL, email_id uuid NOT NULL, "
    "retry integer DEFAULT 0 NOT NULL, last_error text DEFAULT '' NOT NULL, "
    "version bigint DEFAULT 1 NOT NULL, operation varchar(8) DEFAULT 'sync' NOT NULL, "
    "deletion jsonb, next_attempt_at timestamptz, claimed_until timestamptz, "
    f"{_TIMESTAMPS}, CONSTRAINT pending_acoustic_pkey PRIMARY KEY (id), "
    "CONSTRAINT pending_acoustic_email_id_key UNIQUE (email_id))",
    "CREATE INDEX IF NOT EXISTS ix_pending_acoustic_retry_update_timestamp "
    "ON pending_acoustic (retry, update_timestamp)",
    "CREATE TABLE IF NOT EXISTS acoustic_field (tablename varchar(255) DEFAULT 'main' NOT NULL, "
    "field varchar(255) NOT NULL, CONSTRAINT acoustic_field_pkey PRIMARY KEY (tablename, field))",
    "CREATE TABLE IF NOT EXISTS acoustic_newsletter_mapping (source varchar(255) NOT NULL, "
    "destination varchar(255) NOT NULL, "
    "CONSTRAINT acoustic_newsletter_mapping_pkey PRIMARY KEY (source))",
)
_CREATE_STRIPE = (
    "CREATE TABLE IF NOT EXISTS stripe_customer (stripe_id varchar(255) NOT NULL, "
    "fxa_id varchar(255) NOT NULL, default_source_id varchar(255), "
    "invoice_settings_default_payment_method_id varchar(255), stripe_created timestamptz NOT NULL, "
    f"deleted boolean DEFAULT false NOT NULL, {_TIMESTAMPS}, "
    "CONSTRAINT stripe_customer_pkey PRIMARY KEY (stripe_id))",
    "CREATE UNIQUE INDEX IF NOT EXISTS ix_stripe_customer_fxa_id ON stripe_customer (fxa_id)",
    "CREATE TABLE IF NOT EXISTS stripe_price (stripe_id varchar(255) NOT NULL, "
    "stripe_product_id varchar(255) NOT NULL, stripe_created timestamptz NOT NULL, "
    "active boolean DEFAULT true NOT NULL, currency varchar(3) NOT NULL, "
    "recurring_interval varchar(5), recurring_interval_count integer, unit_amount integer, "
    f"{_TIMESTAMPS}, CONSTRAINT stripe_price_pkey PRIMARY KEY (stripe_id))",
    "CREATE TABLE IF NOT EXISTS stripe_subscription (stripe_id varchar(255) NOT NULL, "
    "stripe_customer_id varchar(255) NOT NULL, default_payment_method_id varchar(255), "
    "default_source_id varchar(255), stripe_created timestamptz NOT NULL, "
    "cancel_at_period_end boolean NOT NULL, canceled_at timestamptz, "
    "current_period_end timestamptz NOT NULL, current_period_start timestamptz NOT NULL, "
    "ended_at timestamptz, start_date timestamptz NOT NULL, status varchar(20) NOT NULL, "
    f"{_TIMESTAMPS}, CONSTRAINT stripe_subscription_pkey PRIMARY KEY (stripe_id))",
    "CREATE TABLE IF NOT EXISTS stripe_subscription_item (stripe_id varchar(255) NOT NULL, "
    "stripe_subscription_id varchar(255) NOT NULL, stripe_price_id varchar(255) NOT NULL, "
    f"stripe_created timestamptz NOT NULL, {_TIMESTAMPS}, "
    "CONSTRAINT stripe_subscription_item_pkey PRIMARY KEY (stripe_id), "
    "CONSTRAINT stripe_subscription_item_stripe_subscription_id_fkey "
    "FOREIGN KEY (stripe_subscription_id) REFERENCES stripe_subscription (stripe_id), "
    "CONSTRAINT stripe_subscription_item_stripe_price_id_fkey FOREIGN KEY (stripe_price_id) "
    "REFERENCES stripe_price (stripe_id))",
    "CREATE TABLE IF NOT EXISTS stripe_invoice (stripe_id varchar(255) NOT NULL, "
    "stripe_customer_id varchar(255) NOT NULL, default_payment_method_id varchar(255), "
    "default_source_id varchar(255), stripe_created timestamptz NOT NULL, "
    "currency varchar(3) NOT NULL, total integer NOT NULL, status varchar(15) NOT NULL, "
    f"{_TIMESTAMPS}, CONSTRAINT stripe_invoice_pkey PRIMARY KEY (stripe_id))",
    "CREATE TABLE IF NOT EXISTS stripe_invoice_line_item (stripe_id varchar(255) NOT NULL, "
    "stripe_invoice_id varchar(255) NOT NULL, stripe_type varchar(14) NOT NULL, "
    "stripe_price_id varchar(255) NOT NULL, stripe_invoice_item_id varchar(255), "
    "stripe_subscription_id varchar(255), stripe_subscription_item_id varchar(255), "
    f"amount integer NOT NULL, currency varchar(3) NOT NULL, {_TIMESTAMPS}, "
    "CONSTRAINT stripe_invoice_line_item_pkey PRIMARY KEY (stripe_id), "
    "CONSTRAINT stripe_invoice_line_item_stripe_invoice_id_fkey FOREIGN KEY (stripe_invoice_id) "
    "REFERENCES stripe_invoice (stripe_id), "
    "CONSTRAINT stripe_invoice_line_item_stripe_price_id_fkey FOREIGN KEY (stripe_price_id) "
    "REFERENCES stripe_price (stripe_id))",
    "CREATE INDEX IF NOT EXISTS ix_stripe_invoice_line_item_stripe_invoice_id "
    "ON stripe_invoice_line_item (stripe_invoice_id)",
    "CREATE INDEX IF NOT EXISTS ix_stripe_invoice_line_item_stripe_price_id "
    "ON stripe_invoice_line_item (stripe_price_id)",
)
# Indexes of ours on Stripe tables that ctms-api did not have (built concurrently on existing data).
_STRIPE_INDEXES = {
    "ix_stripe_subscription_stripe_customer_id": "stripe_subscription (stripe_customer_id)",
    "ix_stripe_subscription_item_stripe_subscription_id": (
        "stripe_subscription_item (stripe_subscription_id)"
    ),
    "ix_stripe_invoice_stripe_customer_id": "stripe_invoice (stripe_customer_id)",
}
# Satellites whose link to their contact becomes ON DELETE CASCADE.
_SATELLITES = ("amo", "fxa", "mofo", "newsletters", "waitlists")


def _seed_of(revision: str) -> Any:
    """The module of one of our migrations: its seed data is declared there, once."""
    script = ScriptDirectory.from_config(migrations.alembic_config()).get_revision(revision)
    assert script is not None
    return script.module


async def _tables_exist(connection: asyncpg.Connection, names: Sequence[str]) -> bool:
    for name in names:
        if not await _table_exists(connection, name):
            return False
    return True


# Roles, permissions and the erasure audit (all releases).


async def _roles_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return await _tables_exist(
        connection,
        ("roles", "permissions", "role_permissions", "api_client_roles", "erasure_audit"),
    ) and bool(
        await connection.fetchval("SELECT EXISTS (SELECT 1 FROM roles WHERE name = 'admin')")
    )


async def _create_roles(connection: asyncpg.Connection, _progress: AdoptionProgress) -> None:
    seeds = _seed_of("0002_standard_permissions")
    async with connection.transaction():
        for statement in _CREATE_ROLES_AND_AUDIT:
            await connection.execute(statement)
        for name, description in seeds.PERMISSIONS.items():
            await connection.execute(
                "INSERT INTO permissions (name, description) VALUES ($1, $2) "
                "ON CONFLICT (name) DO NOTHING",
                name,
                description,
            )
        await connection.execute(
            "INSERT INTO roles (name, description) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            seeds.ADMIN_ROLE,
            seeds.ADMIN_ROLE_DESCRIPTION,
        )
        await connection.execute(
            "INSERT INTO role_permissions (role_id, permission_id) "
            "SELECT roles.id, permissions.id FROM roles, permissions "
            "WHERE roles.name = $1 AND permissions.name = 'admin' "
            "ON CONFLICT (role_id, permission_id) DO NOTHING",
            seeds.ADMIN_ROLE,
        )


# API clients.


async def _api_client_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return (
        await _column_exists(connection, "api_client", "last_access")
        and await _column_exists(connection, "api_client", "credentials_changed_at")
        and await _is_not_null(connection, "api_client", "enabled")
        and await _column_default(connection, "api_client", "enabled") == "true"
    )


async def _convert_api_client(connection: asyncpg.Connection, _progress: AdoptionProgress) -> None:
    await _briefly_locking(
        connection,
        "ALTER TABLE api_client ADD COLUMN IF NOT EXISTS last_access timestamptz",
        "ALTER TABLE api_client ADD COLUMN IF NOT EXISTS credentials_changed_at timestamptz",
        "ALTER TABLE api_client ALTER COLUMN enabled SET DEFAULT true",
    )
    # The old service treated a NULL `enabled` as disabled (docs/cutover.md).
    await connection.execute("UPDATE api_client SET enabled = false WHERE enabled IS NULL")
    if not await _is_not_null(connection, "api_client", "enabled"):
        await _set_not_null(connection, "api_client", "enabled")


# The Acoustic queue and configuration.


async def _pending_acoustic_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return (
        await _column_exists(connection, "pending_acoustic", "claimed_until")
        and await _is_not_null(connection, "pending_acoustic", "last_error")
        and await _column_default(connection, "pending_acoustic", "retry") == "0"
        and await _constraint_exists(
            connection, "pending_acoustic", "pending_acoustic_email_id_key"
        )
        and not await _constraint_exists(
            connection, "pending_acoustic", "pending_acoustic_email_id_fkey"
        )
    )


async def _convert_pending_acoustic(
    connection: asyncpg.Connection, progress: AdoptionProgress
) -> None:
    # Constant defaults: PostgreSQL records them in the catalogue, no row is rewritten. Entries queued
    # by the old release become version 1 "sync" entries, due now, with their retry count and error.
    await _briefly_locking(
        connection,
        "ALTER TABLE pending_acoustic ADD COLUMN IF NOT EXISTS version bigint DEFAULT 1 NOT NULL",
        "ALTER TABLE pending_acoustic "
        "ADD COLUMN IF NOT EXISTS operation varchar(8) DEFAULT 'sync' NOT NULL",
        "ALTER TABLE pending_acoustic ADD COLUMN IF NOT EXISTS deletion jsonb",
        "ALTER TABLE pending_acoustic ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz",
        "ALTER TABLE pending_acoustic ADD COLUMN IF NOT EXISTS claimed_until timestamptz",
        "ALTER TABLE pending_acoustic ALTER COLUMN retry SET DEFAULT 0",
        "ALTER TABLE pending_acoustic ALTER COLUMN last_error SET DEFAULT ''",
    )
    await _backfill(
        connection, progress, "pending_acoustic", "last_error = ''", "last_error IS NULL"
    )
    if not await _is_not_null(connection, "pending_acoustic", "last_error"):
        await _set_not_null(connection, "pending_acoustic", "last_error")
    if await _constraint_exists(connection, "pending_acoustic", "uix_pr_email_id"):
        await _briefly_locking(
            connection,
            "ALTER TABLE pending_acoustic "
            "RENAME CONSTRAINT uix_pr_email_id TO pending_acoustic_email_id_key",
        )
    # Our erasures queue a deletion for a contact that no longer exists: no foreign key to emails.
    await _briefly_locking(
        connection,
        "ALTER TABLE pending_acoustic DROP CONSTRAINT IF EXISTS pending_acoustic_email_id_fkey",
    )


async def _pending_acoustic_index_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return await _index_is_valid(connection, "ix_pending_acoustic_retry_update_timestamp")


async def _build_pending_acoustic_index(
    connection: asyncpg.Connection, _progress: AdoptionProgress
) -> None:
    await _build_index(
        connection,
        "ix_pending_acoustic_retry_update_timestamp",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_pending_acoustic_retry_update_timestamp "
        "ON pending_acoustic (retry, update_timestamp)",
    )


async def _acoustic_config_done(connection: asyncpg.Connection, _release: Release) -> bool:
    lengths = [await _column_length(connection, t, c) for t, c, _limit in _NARROWED_COLUMNS]
    return (
        all(
            length == limit
            for length, (_t, _c, limit) in zip(lengths, _NARROWED_COLUMNS, strict=True)
        )
        and await _column_default(connection, "acoustic_field", "tablename") is not None
        and await _constraint_exists(connection, "acoustic_field", "acoustic_field_pkey")
    )


async def _convert_acoustic_config(
    connection: asyncpg.Connection, _progress: AdoptionProgress
) -> None:
    # Tens of rows: the type change rewrites them within the short lock.
    statements = [
        f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE varchar({limit})'
        for table, column, limit in _NARROWED_COLUMNS
    ]
    statements.append("ALTER TABLE acoustic_field ALTER COLUMN tablename SET DEFAULT 'main'")
    if await _constraint_exists(connection, "acoustic_field", "pk_tablename_field"):
        statements.append(
            "ALTER TABLE acoustic_field RENAME CONSTRAINT pk_tablename_field TO acoustic_field_pkey"
        )
    await _briefly_locking(connection, *statements)


async def _acoustic_created(connection: asyncpg.Connection, _release: Release) -> bool:
    return await _tables_exist(connection, _ACOUSTIC_TABLES)


async def _create_acoustic(connection: asyncpg.Connection, _progress: AdoptionProgress) -> None:
    seeds = _seed_of("0005_acoustic_sync")
    async with connection.transaction():
        for statement in _CREATE_ACOUSTIC:
            await connection.execute(statement)
        await connection.executemany(
            "INSERT INTO acoustic_field (tablename, field) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [("main", name) for name in seeds.MAIN_FIELDS]
            + [("waitlist", name) for name in seeds.WAITLIST_FIELDS],
        )
        await connection.executemany(
            "INSERT INTO acoustic_newsletter_mapping (source, destination) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            list(seeds.NEWSLETTER_MAPPING.items()),
        )


# Stripe.


async def _stripe_defaults_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return (
        await _column_default(connection, "stripe_customer", "deleted") == "false"
        and await _column_default(connection, "stripe_price", "active") == "true"
    )


async def _set_stripe_defaults(connection: asyncpg.Connection, _progress: AdoptionProgress) -> None:
    await _briefly_locking(
        connection,
        "ALTER TABLE stripe_customer ALTER COLUMN deleted SET DEFAULT false",
        "ALTER TABLE stripe_price ALTER COLUMN active SET DEFAULT true",
    )


async def _stripe_indexes_done(connection: asyncpg.Connection, _release: Release) -> bool:
    for name in _STRIPE_INDEXES:
        if not await _index_is_valid(connection, name):
            return False
    return True


async def _build_stripe_indexes(
    connection: asyncpg.Connection, _progress: AdoptionProgress
) -> None:
    for name, target in _STRIPE_INDEXES.items():
        await _build_index(
            connection, name, f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON {target}'
        )


async def _stripe_created(connection: asyncpg.Connection, _release: Release) -> bool:
    return await _tables_exist(connection, _STRIPE_TABLES) and await _stripe_indexes_done(
        connection, _release
    )


async def _create_stripe(connection: asyncpg.Connection, _progress: AdoptionProgress) -> None:
    async with connection.transaction():
        for statement in _CREATE_STRIPE:
            await connection.execute(statement)
        for name, target in _STRIPE_INDEXES.items():
            await connection.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON {target}')


# Contacts.


async def _unique_email_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return await _index_is_valid(connection, "idx_email_primary_unique_email_lower")


async def _build_unique_email_index(
    connection: asyncpg.Connection, progress: AdoptionProgress
) -> None:
    try:
        await _build_index(
            connection,
            "idx_email_primary_unique_email_lower",
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_email_primary_unique_email_lower "
            "ON emails (lower(primary_email))",
        )
    except asyncpg.UniqueViolationError as error:
        # The old release wrote a case-insensitive duplicate since the blocker check.
        await connection.execute(
            "DROP INDEX CONCURRENTLY IF EXISTS idx_email_primary_unique_email_lower"
        )
        raise AdoptionRefusedError(
            "a primary e-mail equal to another ignoring case was written during the adoption; "
            "`ctms db adopt --check` lists it, fix it and run adopt again"
        ) from error
    progress.rows_done(await _estimated_rows(connection, "emails"))


async def _old_email_indexes_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return not await _index_exists(
        connection, "idx_email_primary_email_lower"
    ) and not await _constraint_exists(connection, "emails", "emails_primary_email_key")


async def _drop_old_email_indexes(
    connection: asyncpg.Connection, _progress: AdoptionProgress
) -> None:
    # Both are covered by the unique lower(primary_email) index, which is stricter.
    await connection.execute("DROP INDEX CONCURRENTLY IF EXISTS idx_email_primary_email_lower")
    await _briefly_locking(
        connection, "ALTER TABLE emails DROP CONSTRAINT IF EXISTS emails_primary_email_key"
    )


async def _email_id_default_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return await _column_default(connection, "emails", "email_id") is None


async def _drop_email_id_default(
    connection: asyncpg.Connection, _progress: AdoptionProgress
) -> None:
    await _briefly_locking(connection, "ALTER TABLE emails ALTER COLUMN email_id DROP DEFAULT")


async def _cascades_done(connection: asyncpg.Connection, _release: Release) -> bool:
    count = await connection.fetchval(
        "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confdeltype = 'c' "
        "AND conname = ANY($1::text[]) AND convalidated",
        [f"{table}_email_id_fkey" for table in _SATELLITES],
    )
    return bool(count == len(_SATELLITES))


async def _cascade_deletes(connection: asyncpg.Connection, progress: AdoptionProgress) -> None:
    """Each satellite's foreign key to `emails` becomes ON DELETE CASCADE: a new key added NOT VALID
    (a moment's lock), validated (blocks no write), then swapped for the old one in one short lock."""
    for table in _SATELLITES:
        name, new = f"{table}_email_id_fkey", f"{table}_email_id_fkey_cascade"
        if await _cascades_done_for(connection, name):
            continue
        if not await _constraint_exists(connection, table, new):
            await _briefly_locking(
                connection,
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{new}" FOREIGN KEY (email_id) '
                "REFERENCES emails (email_id) ON DELETE CASCADE NOT VALID",
            )
        await connection.execute(f'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{new}"')
        await _briefly_locking(
            connection,
            f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{name}"',
            f'ALTER TABLE "{table}" RENAME CONSTRAINT "{new}" TO "{name}"',
        )
        progress.rows_done(await _estimated_rows(connection, table))


async def _estimated_rows(connection: asyncpg.Connection, table: str) -> int:
    """The planner's row estimate: free, where `count(*)` would scan the table."""
    value = await connection.fetchval(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass($1)", table
    )
    return int(value or 0)


async def _contacts_to_index(connection: asyncpg.Connection) -> int | None:
    return await _estimated_rows(connection, "emails")


async def _satellite_rows(connection: asyncpg.Connection) -> int | None:
    return sum([await _estimated_rows(connection, table) for table in _SATELLITES])


async def _cascades_done_for(connection: asyncpg.Connection, name: str) -> bool:
    return bool(
        await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = $1 AND contype = 'f' "
            "AND confdeltype = 'c' AND convalidated)",
            name,
        )
    )


async def _waitlist_subscribed_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return (
        await _is_not_null(connection, "waitlists", "subscribed")
        and await _column_default(connection, "waitlists", "subscribed") == "true"
    )


async def _convert_waitlist_subscribed(
    connection: asyncpg.Connection, _progress: AdoptionProgress
) -> None:
    await _briefly_locking(
        connection, "ALTER TABLE waitlists ALTER COLUMN subscribed SET DEFAULT true"
    )
    if not await _is_not_null(connection, "waitlists", "subscribed"):
        await _set_not_null(connection, "waitlists", "subscribed")


async def _waitlist_fields_done(connection: asyncpg.Connection, _release: Release) -> bool:
    return await _column_type(connection, "waitlists", "fields") == "jsonb"


async def _waitlist_rows_to_convert(connection: asyncpg.Connection) -> int | None:
    if not await _column_exists(connection, "waitlists", "fields_jsonb"):
        return int(await connection.fetchval("SELECT count(*) FROM waitlists"))
    return int(
        await connection.fetchval("SELECT count(*) FROM waitlists WHERE fields_jsonb IS NULL")
    )


async def _convert_waitlist_fields(
    connection: asyncpg.Connection, progress: AdoptionProgress
) -> None:
    """`waitlists.fields` json → jsonb without rewriting the table under a lock: a jsonb column kept
    equal by a trigger while batches copy the existing rows, then swapped in under a moment's lock.
    `update_timestamp` is not touched: the contacts did not change."""
    await _briefly_locking(
        connection,
        "ALTER TABLE waitlists ADD COLUMN IF NOT EXISTS fields_jsonb jsonb",
        "CREATE OR REPLACE FUNCTION ctms_adopt_waitlists_fields() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN NEW.fields_jsonb := NEW.fields::jsonb; RETURN NEW; END $$",
        "DROP TRIGGER IF EXISTS ctms_adopt_waitlists_fields ON waitlists",
        "CREATE TRIGGER ctms_adopt_waitlists_fields BEFORE INSERT OR UPDATE ON waitlists "
        "FOR EACH ROW EXECUTE FUNCTION ctms_adopt_waitlists_fields()",
    )
    await _backfill(
        connection, progress, "waitlists", "fields_jsonb = fields::jsonb", "fields_jsonb IS NULL"
    )
    check = "waitlists_fields_jsonb_not_null"
    if not await _constraint_exists(connection, "waitlists", check):
        await _briefly_locking(
            connection,
            f"ALTER TABLE waitlists ADD CONSTRAINT {check} CHECK (fields_jsonb IS NOT NULL) NOT VALID",
        )
    await connection.execute(f"ALTER TABLE waitlists VALIDATE CONSTRAINT {check}")
    await _briefly_locking(
        connection,
        "DROP TRIGGER ctms_adopt_waitlists_fields ON waitlists",
        "ALTER TABLE waitlists DROP COLUMN fields",
        "ALTER TABLE waitlists RENAME COLUMN fields_jsonb TO fields",
        "ALTER TABLE waitlists ALTER COLUMN fields SET DEFAULT '{}'::jsonb",
        "ALTER TABLE waitlists ALTER COLUMN fields SET NOT NULL",
        f"ALTER TABLE waitlists DROP CONSTRAINT {check}",
        "DROP FUNCTION ctms_adopt_waitlists_fields()",
    )


# The fixed list, in order. A step runs when its release needs it and it is not done yet.
STEPS: tuple[Step, ...] = (
    Step("Create roles, permissions and the erasure audit", _every_release, _roles_done, _create_roles),
    Step("API clients: last_access, credentials_changed_at, enabled NOT NULL", _every_release, _api_client_done, _convert_api_client),
    Step("Acoustic queue: our columns, keep the retry state", _with_acoustic, _pending_acoustic_done, _convert_pending_acoustic),
    Step("Acoustic queue: index on (retry, update_timestamp)", _with_acoustic, _pending_acoustic_index_done, _build_pending_acoustic_index),
    Step("Acoustic configuration: column sizes, defaults", _with_acoustic, _acoustic_config_done, _convert_acoustic_config),
    Step("Create the Acoustic queue and configuration (seeded)", _without_acoustic, _acoustic_created, _create_acoustic),
    Step("Stripe: defaults", _with_stripe, _stripe_defaults_done, _set_stripe_defaults),
    Step("Stripe: indexes by customer and subscription", _with_stripe, _stripe_indexes_done, _build_stripe_indexes),
    Step("Create the Stripe tables", _without_stripe, _stripe_created, _create_stripe),
    Step("Contacts: unique index on lower(primary_email)", _without_unique_lower_email, _unique_email_done, _build_unique_email_index, _contacts_to_index),
    Step("Contacts: drop the indexes the unique one replaces", _every_release, _old_email_indexes_done, _drop_old_email_indexes),
    Step("Contacts: no database default for email_id", _is_v6, _email_id_default_done, _drop_email_id_default),
    Step("Contacts: satellites deleted with their contact (ON DELETE CASCADE)", _every_release, _cascades_done, _cascade_deletes, _satellite_rows),
    Step("Waitlists: subscribed NOT NULL DEFAULT true", _every_release, _waitlist_subscribed_done, _convert_waitlist_subscribed),
    Step("Waitlists: fields json → jsonb", _every_release, _waitlist_fields_done, _convert_waitlist_fields, _waitlist_rows_to_convert),
)  # fmt: skip
