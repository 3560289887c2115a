"""Administration of API clients (the `ctms clients ...` commands, docs/contract.md §13.1)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from msgspec.structs import replace

from ctms_core.domain.api_client import (
    CLIENT_NAME,
    ApiClient,
    client_id_for,
    next_credentials_change,
)
from ctms_core.domain.errors import (
    BadRequestError,
    CoreError,
    NotFoundError,
    UniqueConstraintViolation,
)
from ctms_core.domain.fields import InvalidValue, email_address
from ctms_core.ports.clock import Clock
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.ports.security import PasswordHasher

_CLIENT_EMAIL = email_address(255)


class ApiClientExistsError(CoreError):
    pass


class ApiClientNotFoundError(NotFoundError):
    pass


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str


def new_client_secret() -> str:
    """`secret_` + 43 URL-safe characters, the v3 format (50 characters)."""
    return "secret_" + secrets.token_urlsafe(32)


class ApiClientService:
    """Create, enable, disable, rotate, re-address, delete and list API clients.

    Rules: ids are `id_<name>` with names of letters, digits, `-`, `_`, `.`; secrets are shown once and
    stored only as hashes; rotating a secret or disabling a client revokes the tokens issued before
    (`credentials_changed_at`), and so does creating one (so the tokens of an earlier client of the same
    name, deleted since, stay refused); enabling one does not; deleting a client removes its role
    grants too, and its tokens stop working (they name a client that no longer exists).
    """

    def __init__(
        self, uow_factory: Callable[[], UnitOfWork], hasher: PasswordHasher, clock: Clock
    ) -> None:
        self._uow_factory = uow_factory
        self._hasher = hasher
        self._clock = clock

    async def create(
        self, name: str, email: str, *, enabled: bool = True, secret: str | None = None
    ) -> ClientCredentials:
        if not CLIENT_NAME.match(name) or not name:
            raise BadRequestError(
                f"name {name!r} should have only alphanumeric characters, '-', '_', or '.'"
            )
        try:
            _CLIENT_EMAIL(email)
        except InvalidValue as invalid:
            raise BadRequestError(f"email {email!r}: {invalid.msg}") from None
        client_id = client_id_for(name)
        client_secret = secret or new_client_secret()
        now = self._clock.now()
        client = ApiClient(
            client_id=client_id,
            email=email,
            enabled=enabled,
            hashed_secret=self._hasher.hash(client_secret),
            create_timestamp=now,
            update_timestamp=now,
            # A new client starts a new credentials version: a token issued to an earlier client of
            # the same name (deleted since) names this id but not this version, so it is refused.
            credentials_changed_at=now,
        )
        async with self._uow_factory() as uow:
            try:
                await uow.api_clients.add(client)
            except UniqueConstraintViolation:
                raise ApiClientExistsError(f"API client {client_id!r} already exists") from None
            await uow.commit()
        return ClientCredentials(client_id, client_secret)

    async def get(self, client_id: str) -> ApiClient:
        async with self._uow_factory() as uow:
            client = await uow.api_clients.get(client_id_for(client_id))
        if client is None:
            raise ApiClientNotFoundError(f"Unknown API client {client_id!r}")
        return client

    async def list(self) -> list[ApiClient]:
        async with self._uow_factory() as uow:
            return await uow.api_clients.list()

    async def set_enabled(self, client_id: str, enabled: bool) -> bool:
        """Enable or disable; returns False when the client already was in that state."""
        async with self._uow_factory() as uow:
            client = await self._existing(uow, client_id)
            if client.enabled == enabled:
                return False
            now = self._clock.now()
            await uow.api_clients.save(
                replace(
                    client,
                    enabled=enabled,
                    update_timestamp=now,
                    credentials_changed_at=client.credentials_changed_at
                    if enabled
                    else next_credentials_change(client, now),
                )
            )
            await uow.commit()
        return True

    async def rotate_secret(self, client_id: str) -> ClientCredentials:
        client_secret = new_client_secret()
        async with self._uow_factory() as uow:
            client = await self._existing(uow, client_id)
            now = self._clock.now()
            await uow.api_clients.save(
                replace(
                    client,
                    hashed_secret=self._hasher.hash(client_secret),
                    update_timestamp=now,
                    credentials_changed_at=next_credentials_change(client, now),
                )
            )
            await uow.commit()
        return ClientCredentials(client.client_id, client_secret)

    async def delete(self, client_id: str) -> ApiClient:
        """Delete the client `client_id` (`id_` optional) and its role grants; returns what was
        deleted. Erasure audit records naming it are kept: they are proof, not configuration.
        Nothing of the client is left to revoke its unexpired tokens with, so a client created again
        under the same name accepts them until it rotates its secret."""
        async with self._uow_factory() as uow:
            client = await self._existing(uow, client_id)
            await uow.api_clients.delete(client.client_id)
            await uow.commit()
        return client

    async def set_email(self, client_id: str, email: str) -> bool:
        """Change the contact address of a client's owner; returns False when it already was
        `email`. The credentials stay valid."""
        try:
            _CLIENT_EMAIL(email)
        except InvalidValue as invalid:
            raise BadRequestError(f"email {email!r}: {invalid.msg}") from None
        async with self._uow_factory() as uow:
            client = await self._existing(uow, client_id)
            if client.email == email:
                return False
            await uow.api_clients.save(
                replace(client, email=email, update_timestamp=self._clock.now())
            )
            await uow.commit()
        return True

    @staticmethod
    async def _existing(uow: UnitOfWork, client_id: str) -> ApiClient:
        client = await uow.api_clients.get(client_id_for(client_id))
        if client is None:
            raise ApiClientNotFoundError(f"Unknown API client {client_id!r}")
        return client
