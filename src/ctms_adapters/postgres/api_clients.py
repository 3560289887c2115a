"""`ApiClientRepository` on PostgreSQL with SQLAlchemy Core.

A client is read with its roles and the permissions they grant in the same statement (two correlated
`array_agg` subqueries): authenticating a request stays one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import DateTime, String, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from ctms_adapters.postgres.tables import (
    api_client,
    api_client_roles,
    permissions,
    role_permissions,
    roles,
)
from ctms_adapters.postgres.transaction import DriverStatement, TransactionScope
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_adapters.postgres.unique_violations import unique_constraint_of
from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.errors import UniqueConstraintViolation

_TIMESTAMP = DateTime(timezone=True)
_GRANTS: Final = ("roles", "permissions")
_FIELDS: Final = tuple(name for name in ApiClient.__struct_fields__ if name not in _GRANTS)
_TIMESTAMPS: Final = frozenset({"create_timestamp", "update_timestamp"})

_ROLE_NAMES = (
    select(func.array_agg(roles.c.name))
    .select_from(api_client_roles.join(roles, roles.c.id == api_client_roles.c.role_id))
    .where(api_client_roles.c.api_client_id == api_client.c.client_id)
    .scalar_subquery()
)
_PERMISSION_NAMES = (
    select(func.array_agg(func.distinct(permissions.c.name)))
    .select_from(
        api_client_roles.join(
            role_permissions, role_permissions.c.role_id == api_client_roles.c.role_id
        ).join(permissions, permissions.c.id == role_permissions.c.permission_id)
    )
    .where(api_client_roles.c.api_client_id == api_client.c.client_id)
    .scalar_subquery()
)
_COLUMNS = [
    *(api_client.c[name] for name in _FIELDS),
    _ROLE_NAMES.label("roles"),
    _PERMISSION_NAMES.label("permissions"),
]
# Read on every authenticated request: the driver's fast path.
_BY_ID = DriverStatement(
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

# The role links go first, explicitly: a database adopted from ctms-api may lack the cascading foreign key.
_DELETE_ROLE_LINKS = delete(api_client_roles).where(
    api_client_roles.c.api_client_id == bindparam("target_client_id", type_=String())
)
_DELETE = delete(api_client).where(
    api_client.c.client_id == bindparam("target_client_id", type_=String())
)


def _client(row: Sequence[Any]) -> ApiClient:
    values = dict(zip((*_FIELDS, *_GRANTS), row, strict=True))
    # NULL behaves as disabled (docs/contract.md §1.3); the column is NOT NULL today, older data may not be.
    values["enabled"] = bool(values["enabled"])
    values["roles"] = tuple(sorted(values["roles"] or ()))
    values["permissions"] = frozenset(values["permissions"] or ())
    return ApiClient(**values)


def _stored_values(client: ApiClient) -> dict[str, Any]:
    return {name: getattr(client, name) for name in _FIELDS}


@reports_unavailability
class PostgresApiClientRepository:
    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope

    async def get(self, client_id: str) -> ApiClient | None:
        rows = await self._scope.rows(_BY_ID, {"client_id": client_id})
        return _client(rows[0]) if rows else None

    async def list(self) -> list[ApiClient]:
        return [_client(row) for row in await self._scope.run(_ALL)]

    async def add(self, client: ApiClient) -> None:
        try:
            async with self._scope.atomic():
                await self._scope.run(_INSERT, _stored_values(client))
        except IntegrityError as error:
            if unique_constraint_of(error) is None:
                raise
            raise UniqueConstraintViolation(["client_id"]) from None

    async def save(self, client: ApiClient) -> None:
        await self._scope.begin()
        await self._scope.run(_UPSERT, _stored_values(client))

    async def delete(self, client_id: str) -> None:
        await self._scope.begin()
        await self._scope.run(_DELETE_ROLE_LINKS, {"target_client_id": client_id})
        await self._scope.run(_DELETE, {"target_client_id": client_id})

    async def record_access(self, client_id: str, at: datetime) -> None:
        await self._scope.begin()
        await self._scope.run(_RECORD_ACCESS, {"target_client_id": client_id, "at": at})
