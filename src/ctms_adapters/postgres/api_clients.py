"""`ApiClientRepository` on PostgreSQL with SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
from sqlalchemy import DateTime, String, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from ctms_adapters.postgres.tables import api_client
from ctms_adapters.postgres.transaction import DriverRead, TransactionScope
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_adapters.postgres.unique_violations import unique_constraint_of
from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.errors import UniqueConstraintViolation

_TIMESTAMP = DateTime(timezone=True)
_FIELDS: Final = ApiClient.__struct_fields__
_TIMESTAMPS: Final = frozenset({"create_timestamp", "update_timestamp"})

_COLUMNS = [api_client.c[name] for name in _FIELDS]
# Read on every authenticated request: the driver's fast path.
_BY_ID = DriverRead(
    select(*_COLUMNS).where(api_client.c.client_id == bindparam("client_id", type_=String()))
)
# Code-point order like every other listing, whatever the collation.
_ALL = select(*_COLUMNS).order_by(api_client.c.client_id.collate("C"))

_values: dict[str, Any] = {
    name: (
        func.coalesce(bindparam(name, type_=_TIMESTAMP), func.now())
        if name in _TIMESTAMPS
        else bindparam(name, type_=api_client.c[name].type)
    )
    for name in _FIELDS
}
_INSERT = pg_insert(api_client).values(**_values)
# Like the in-memory adapter, `save` stores the client whether or not it exists; the row keeps its
# create_timestamp.
_UPSERT = _INSERT.on_conflict_do_update(
    index_elements=[api_client.c.client_id],
    set_={
        name: _INSERT.excluded[name]
        for name in _FIELDS
        if name not in ("client_id", "create_timestamp")
    },
)
_RECORD_ACCESS = (
    update(api_client)
    # SQLAlchemy reserves column names for the SET clause's parameters.
    .where(api_client.c.client_id == bindparam("target_client_id", type_=String()))
    .values(last_access=bindparam("at", type_=_TIMESTAMP))
)


def _client(row: Sequence[Any]) -> ApiClient:
    values = dict(zip(_FIELDS, row, strict=True))
    # NULL behaves as disabled (R§1.5); the column is NOT NULL today, older data may not be.
    values["enabled"] = bool(values["enabled"])
    return ApiClient(**values)


@reports_unavailability
class PostgresApiClientRepository:
    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope

    async def get(self, client_id: str) -> ApiClient | None:
        rows = await self._scope.rows(_BY_ID, {"client_id": client_id})
        return _client(rows[0]) if rows else None

    async def list(self) -> list[ApiClient]:
        return [_client(row) for row in await self._scope.connection.execute(_ALL)]

    async def add(self, client: ApiClient) -> None:
        try:
            async with self._scope.atomic():
                await self._scope.connection.execute(_INSERT, msgspec.structs.asdict(client))
        except IntegrityError as error:
            if unique_constraint_of(error) is None:
                raise
            raise UniqueConstraintViolation(["client_id"]) from None

    async def save(self, client: ApiClient) -> None:
        await self._scope.begin()
        await self._scope.connection.execute(_UPSERT, msgspec.structs.asdict(client))

    async def record_access(self, client_id: str, at: datetime) -> None:
        await self._scope.begin()
        await self._scope.connection.execute(
            _RECORD_ACCESS, {"target_client_id": client_id, "at": at}
        )
