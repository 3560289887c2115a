"""The async engine: one connection pool per process, shared by every unit of work."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy.engine import URL, make_url
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
CONNECT_TIMEOUT_SECONDS = 10


def connect_args(application_name: str = "ctms") -> dict[str, Any]:
    """asyncpg arguments of every connection. The session time zone is UTC, so timestamps PostgreSQL
    renders inside JSON documents always carry `+00:00`."""
    return {
        "timeout": CONNECT_TIMEOUT_SECONDS,
        "server_settings": {"timezone": "UTC", "application_name": application_name},
    }


def create_engine(
    url: str,
    *,
    pool_size: int,
    max_overflow: int,
    pool_timeout: int,
    pool_recycle: int,
    echo: bool,
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
    """
    return create_async_engine(
        async_url(url),
        isolation_level=READS_ISOLATION,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=pool_recycle,
        echo=echo,
        connect_args=connect_args(),
        json_serializer=_dump_json,
        json_deserializer=msgspec.json.decode,
    )
