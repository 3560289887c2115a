"""Administration of roles and permissions (the `ctms roles|permissions ...` commands and `ctms clients
grant|revoke`, docs/contract.md §13.1, §14.1)."""

from __future__ import annotations

from collections.abc import Callable

from ctms_core.domain.api_client import ApiClient, client_id_for
from ctms_core.domain.errors import (
    NotFoundError,
    PreconditionFailedError,
    UniqueConstraintViolation,
)
from ctms_core.domain.permissions import Permission, Role, check_name
from ctms_core.ports.repositories import UnitOfWork

CLI = "ctms"


class RoleNotFoundError(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Role {name!r} not found.")


class PermissionNotFoundError(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Permission {name!r} not found.")


class ClientNotFoundError(NotFoundError):
    def __init__(self, client_id: str) -> None:
        super().__init__(f"API client {client_id!r} not found.")


def _commands(intro: str, commands: list[str]) -> str:
    return intro + "\n" + "\n".join(f"  {command}" for command in commands)


class AccessControlService:
    """Roles, permissions and their grants, one transaction per operation.

    Rules (docs/contract.md §13.1): names are unique — creating a duplicate, or granting what is already granted
    to a role, is a `PreconditionFailedError` (CLI exit 10); so is revoking what is not granted. A role
    still assigned to clients or still holding permissions, and a permission still granted to roles,
    cannot be deleted: the error lists the revoke commands to run first. Unknown names are
    `NotFoundError`s (exit 4). Granting a client a role it already holds changes nothing (returns
    False).
    """

    def __init__(self, uow_factory: Callable[[], UnitOfWork]) -> None:
        self._uow_factory = uow_factory

    # --- roles ------------------------------------------------------------------------------------

    async def list_roles(self) -> list[Role]:
        async with self._uow_factory() as uow:
            return await uow.roles.list_roles()

    async def get_role(self, name: str) -> Role:
        async with self._uow_factory() as uow:
            return await self._role(uow, name)

    async def create_role(self, name: str, description: str | None = None) -> None:
        check_name("Role", name)
        async with self._uow_factory() as uow:
            try:
                await uow.roles.add_role(name, description)
            except UniqueConstraintViolation:
                raise PreconditionFailedError(f"Role {name!r} already exists.") from None
            await uow.commit()

    async def delete_role(self, name: str) -> None:
        async with self._uow_factory() as uow:
            role = await self._role(uow, name)
            commands = [f"{CLI} clients revoke {client} {name}" for client in role.clients]
            commands += [f"{CLI} roles revoke {name} {perm}" for perm in role.permissions]
            if commands:
                raise PreconditionFailedError(
                    _commands(
                        f"Role {name!r} is still assigned to clients or holds permissions; "
                        "run first:",
                        commands,
                    )
                )
            await uow.roles.delete_role(name)
            await uow.commit()

    async def grant_permission(self, role_name: str, permission_name: str) -> None:
        async with self._uow_factory() as uow:
            role = await self._role(uow, role_name)
            await self._permission(uow, permission_name)
            if permission_name in role.permissions:
                raise PreconditionFailedError(
                    f"Role {role_name!r} already has permission {permission_name!r}."
                )
            await uow.roles.grant_permission(role_name, permission_name)
            await uow.commit()

    async def revoke_permission(self, role_name: str, permission_name: str) -> None:
        async with self._uow_factory() as uow:
            role = await self._role(uow, role_name)
            await self._permission(uow, permission_name)
            if permission_name not in role.permissions:
                raise PreconditionFailedError(
                    f"Role {role_name!r} does not have permission {permission_name!r}."
                )
            await uow.roles.revoke_permission(role_name, permission_name)
            await uow.commit()

    # --- permissions ------------------------------------------------------------------------------

    async def list_permissions(self) -> list[Permission]:
        async with self._uow_factory() as uow:
            return await uow.roles.list_permissions()

    async def create_permission(self, name: str, description: str | None = None) -> None:
        check_name("Permission", name)
        async with self._uow_factory() as uow:
            try:
                await uow.roles.add_permission(name, description)
            except UniqueConstraintViolation:
                raise PreconditionFailedError(f"Permission {name!r} already exists.") from None
            await uow.commit()

    async def delete_permission(self, name: str) -> None:
        async with self._uow_factory() as uow:
            permission = await self._permission(uow, name)
            if permission.roles:
                raise PreconditionFailedError(
                    _commands(
                        f"Permission {name!r} is still granted to roles; run first:",
                        [f"{CLI} roles revoke {role} {name}" for role in permission.roles],
                    )
                )
            await uow.roles.delete_permission(name)
            await uow.commit()

    # --- clients ----------------------------------------------------------------------------------

    async def grant_role(self, client_name: str, role_name: str) -> bool:
        """Give a client a role; False when it already held it."""
        async with self._uow_factory() as uow:
            client = await self._client(uow, client_name)
            await self._role(uow, role_name)
            if role_name in client.roles:
                return False
            await uow.roles.grant_role(client.client_id, role_name)
            await uow.commit()
        return True

    async def revoke_role(self, client_name: str, role_name: str) -> None:
        async with self._uow_factory() as uow:
            client = await self._client(uow, client_name)
            await self._role(uow, role_name)
            if role_name not in client.roles:
                raise PreconditionFailedError(
                    f"API client {client.client_id!r} does not have role {role_name!r}."
                )
            await uow.roles.revoke_role(client.client_id, role_name)
            await uow.commit()

    # --- helpers ----------------------------------------------------------------------------------

    @staticmethod
    async def _role(uow: UnitOfWork, name: str) -> Role:
        role = await uow.roles.get_role(name)
        if role is None:
            raise RoleNotFoundError(name)
        return role

    @staticmethod
    async def _permission(uow: UnitOfWork, name: str) -> Permission:
        permission = await uow.roles.get_permission(name)
        if permission is None:
            raise PermissionNotFoundError(name)
        return permission

    @staticmethod
    async def _client(uow: UnitOfWork, name: str) -> ApiClient:
        client = await uow.api_clients.get(client_id_for(name))
        if client is None:
            raise ClientNotFoundError(client_id_for(name))
        return client
