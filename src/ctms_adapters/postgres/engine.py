"""The async engine: one connection pool per process, shared by every unit of work."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ctms_adapters.postgres.transaction import READS_ISOLATION

ASYNC_DRIVER = "postgresql+asyncpg"
_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+asyncpg"})

_json_encoder = msgspec.json.Encoder()


def _dump_json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def async_url(url: str | URL) -> URL:
    """`url` with the asyncpg driver, whichever PostgreSQL scheme it was written with."""
    parsed = make_url(url)
    if parsed.drivername not in _POSTGRES_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {parsed.drivername}://…")
    return parsed.set(drivername=ASYNC_DRIVER)


# asyncpg waits 60 s by default; an unreachable database must turn into a 503 well before clients give up.
CONNECT_TIMEOUT_SECONDS = 10.0
# How much longer than PostgreSQL's own `statement_timeout` the client waits for an answer before it
# gives the connection up: a live server cancels the statement itself (the connection stays usable);
# only a server (or network) that says nothing at all runs into the client's limit.
CLIENT_TIMEOUT_GRACE_SECONDS = 1.0
# A session left idle inside a transaction (a client that vanished or froze mid-unit-of-work) holds its
# row locks until PostgreSQL ends it after this long. No unit of work waits on anything but the database
# inside a transaction, so any idle time beyond a few milliseconds means the client is gone.
IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = 60.0


def connect_args(
    application_name: str = "ctms",
    *,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    statement_timeout: float | None = None,
) -> dict[str, Any]:
    """asyncpg arguments of every connection. The session time zone is UTC, so timestamps PostgreSQL
    renders inside JSON documents always carry `+00:00`.

    `statement_timeout` (seconds; None → no limit, for migrations) is set once per connection, in the
    startup message, at no round trip: PostgreSQL's `statement_timeout`, and asyncpg's `command_timeout`
    a grace period later for a database that stopped answering (a frozen server, a network black hole),
    which `is_unavailability` reports and the unit of work answers by discarding the connection.
    """
    server_settings = {"timezone": "UTC", "application_name": application_name}
    arguments: dict[str, Any] = {"timeout": connect_timeout}
    if statement_timeout is not None:
        server_settings["statement_timeout"] = _milliseconds(statement_timeout)
        server_settings["idle_in_transaction_session_timeout"] = _milliseconds(
            max(IDLE_IN_TRANSACTION_TIMEOUT_SECONDS, statement_timeout)
        )
        arguments["command_timeout"] = statement_timeout + CLIENT_TIMEOUT_GRACE_SECONDS
    arguments["server_settings"] = server_settings
    return arguments


def _milliseconds(seconds: float) -> str:
    return str(max(round(seconds * 1000), 1))


def create_engine(
    url: str,
    *,
    pool_size: int,
    max_overflow: int,
    pool_timeout: int,
    pool_recycle: int,
    echo: bool,
    statement_timeout: float | None = None,
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
) -> AsyncEngine:
    """An asyncpg engine; connects lazily, so building it never touches the database.

    No `pool_pre_ping`: it would cost a round trip per checkout on the hot path. A connection broken by a
    database restart fails one statement, SQLAlchemy then invalidates the whole pool, and the next checkout
    reconnects, so the service recovers without a restart. asyncpg's prepared-statement cache stays on
    (SQLAlchemy's default of 100 statements per connection): every statement here has a fixed text.

    Connections are in autocommit mode from the moment they are opened, and checkin puts them back in
    it: a unit of work that only reads then costs one round trip per query, and its checkout and checkin
    set nothing (an isolation level applied per checkout cost as much CPU as the read itself). Work that
    needs a transaction asks for one (`TransactionScope`).

    `statement_timeout` and `connect_timeout` bound how long a statement and a connection attempt may
    take (see `connect_args`); with the pool timeout they bound how long a request waits for a database
    that stopped answering before it answers 503.
    """
    engine = create_async_engine(
        async_url(url),
        isolation_level=READS_ISOLATION,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=pool_recycle,
        echo=echo,
        connect_args=connect_args(
            connect_timeout=connect_timeout, statement_timeout=statement_timeout
        ),
        json_serializer=_dump_json,
        json_deserializer=msgspec.json.decode,
    )
    event.listen(engine.sync_engine, "handle_error", _discard_timed_out_connection)
    return engine


def _discard_timed_out_connection(context: ExceptionContext) -> None:
    """A statement run through SQLAlchemy that the database did not answer in time (asyncpg's
    `command_timeout`) leaves its connection waiting for an answer: close it at once and have SQLAlchemy
    invalidate it, so it never goes back to the pool half-way through a statement. The other pooled
    connections stay: each finds out on its own, within the same timeout. (Units of work discard their
    connection themselves: `TransactionScope.close`.)"""
    if not isinstance(context.original_exception, TimeoutError) or context.connection is None:
        return
    if not context.connection.invalidated:
        driver = context.connection.connection.driver_connection
        if driver is not None:
            driver.terminate()
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = False
