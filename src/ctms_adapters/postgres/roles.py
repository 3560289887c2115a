"""`RoleRepository` on PostgreSQL: roles, permissions and their grants (docs/contract.md §1.3), with SQLAlchemy Core.

Administration is rare and small: clarity wins over round trips here (the hot path reads a client's
grants together with the client, in `api_clients`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from ctms_adapters.postgres.tables import api_client_roles, permissions, role_permissions, roles
from ctms_adapters.postgres.transaction import TransactionScope
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_adapters.postgres.unique_violations import unique_constraint_of
from ctms_core.domain.errors import UniqueConstraintViolation
from ctms_core.domain.permissions import Permission, Role

_ROLE_PERMISSIONS = (
    select(roles.c.name.label("role"), permissions.c.name.label("permission"))
    .select_from(
        role_permissions.join(roles, roles.c.id == role_permissions.c.role_id).join(
            permissions, permissions.c.id == role_permissions.c.permission_id
        )
    )
    .order_by(permissions.c.name.collate("C"))
)
_ROLE_CLIENTS = (
    select(roles.c.name.label("role"), api_client_roles.c.api_client_id.label("client_id"))
    .select_from(api_client_roles.join(roles, roles.c.id == api_client_roles.c.role_id))
    .order_by(api_client_roles.c.api_client_id.collate("C"))
)


def _id_of(table: Table, name: str) -> Any:
    return select(table.c.id).where(table.c.name == name).scalar_subquery()


@reports_unavailability
class PostgresRoleRepository:
    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope

    async def get_role(self, name: str) -> Role | None:
        found = await self._roles(name)
        return found[0] if found else None

    async def list_roles(self) -> list[Role]:
        return await self._roles(None)

    async def add_role(self, name: str, description: str | None) -> None:
        await self._add(roles, name, description)

    async def delete_role(self, name: str) -> None:
        await self._scope.begin()
        await self._scope.run(delete(roles).where(roles.c.name == name))

    async def get_permission(self, name: str) -> Permission | None:
        found = await self._permissions(name)
        return found[0] if found else None

    async def list_permissions(self) -> list[Permission]:
        return await self._permissions(None)

    async def add_permission(self, name: str, description: str | None) -> None:
        await self._add(permissions, name, description)

    async def delete_permission(self, name: str) -> None:
        await self._scope.begin()
        await self._scope.run(delete(permissions).where(permissions.c.name == name))

    async def grant_permission(self, role: str, permission: str) -> None:
        await self._scope.begin()
        await self._scope.run(
            pg_insert(role_permissions)
            .values(role_id=_id_of(roles, role), permission_id=_id_of(permissions, permission))
            .on_conflict_do_nothing()
        )

    async def revoke_permission(self, role: str, permission: str) -> None:
        await self._scope.begin()
        await self._scope.run(
            delete(role_permissions).where(
                role_permissions.c.role_id == _id_of(roles, role),
                role_permissions.c.permission_id == _id_of(permissions, permission),
            )
        )

    async def grant_role(self, client_id: str, role: str) -> None:
        await self._scope.begin()
        await self._scope.run(
            pg_insert(api_client_roles)
            .values(api_client_id=client_id, role_id=_id_of(roles, role))
            .on_conflict_do_nothing()
        )

    async def revoke_role(self, client_id: str, role: str) -> None:
        await self._scope.begin()
        await self._scope.run(
            delete(api_client_roles).where(
                api_client_roles.c.api_client_id == client_id,
                api_client_roles.c.role_id == _id_of(roles, role),
            )
        )

    # --- helpers ----------------------------------------------------------------------------------

    async def _add(self, table: Table, name: str, description: str | None) -> None:
        try:
            async with self._scope.atomic():
                await self._scope.run(insert(table).values(name=name, description=description))
        except IntegrityError as error:
            if unique_constraint_of(error) is None:
                raise
            raise UniqueConstraintViolation(["name"]) from None

    async def _rows(self, statement: Any) -> Sequence[Any]:
        result = await self._scope.run(statement)
        return result.all()

    async def _roles(self, name: str | None) -> list[Role]:
        listing = select(roles.c.name, roles.c.description).order_by(roles.c.name.collate("C"))
        grants, holders = _ROLE_PERMISSIONS, _ROLE_CLIENTS
        if name is not None:
            listing = listing.where(roles.c.name == name)
            grants = grants.where(roles.c.name == name)
            holders = holders.where(roles.c.name == name)
        granted: dict[str, list[str]] = {}
        for row in await self._rows(grants):
            granted.setdefault(row.role, []).append(row.permission)
        held: dict[str, list[str]] = {}
        for row in await self._rows(holders):
            held.setdefault(row.role, []).append(row.client_id)
        return [
            Role(
                name=row.name,
                description=row.description,
                permissions=tuple(granted.get(row.name, ())),
                clients=tuple(held.get(row.name, ())),
            )
            for row in await self._rows(listing)
        ]

    async def _permissions(self, name: str | None) -> list[Permission]:
        listing = select(permissions.c.name, permissions.c.description).order_by(
            permissions.c.name.collate("C")
        )
        grants = _ROLE_PERMISSIONS.order_by(None).order_by(roles.c.name.collate("C"))
        if name is not None:
            listing = listing.where(permissions.c.name == name)
            grants = grants.where(permissions.c.name == name)
        granting: dict[str, list[str]] = {}
        for row in await self._rows(grants):
            granting.setdefault(row.permission, []).append(row.role)
        return [
            Permission(
                name=row.name,
                description=row.description,
                roles=tuple(granting.get(row.name, ())),
            )
            for row in await self._rows(listing)
        ]
