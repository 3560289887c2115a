"""API clients: the server-side callers (Basket, MoFo tooling) that get OAuth2 access tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import msgspec

CLIENT_NAME = re.compile(r"^[-_.a-zA-Z0-9]*$")
TOKEN_NAMESPACE = "api_client"  # noqa: S105 - the `sub` claim prefix, not a secret


class ApiClient(msgspec.Struct, frozen=True, kw_only=True):
    """`credentials_changed_at` is when the secret was last rotated or the client disabled; tokens issued
    before it are revoked (docs/contract.md §3.2). Creating a client records its first one, so the
    tokens of a deleted client of the same name never work for its successor; a client created by
    ctms-api v3.3 has none (None).

    `roles` (sorted names) and `permissions` (every permission those roles grant) are read with the
    client, in the same query; repositories ignore them on `add`/`save` (roles are granted through the
    role repository)."""

    client_id: str
    email: str
    enabled: bool = True
    hashed_secret: str
    create_timestamp: datetime | None = None
    update_timestamp: datetime | None = None
    last_access: datetime | None = None
    credentials_changed_at: datetime | None = None
    roles: tuple[str, ...] = ()
    permissions: frozenset[str] = frozenset()

    @property
    def has_roles(self) -> bool:
        return bool(self.roles)


def client_id_for(name: str) -> str:
    """v3 convention: ids are `id_<name>` (a name that already starts with `id_` is kept)."""
    return name if name.startswith("id_") else f"id_{name}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def credentials_version(client: ApiClient) -> int:
    """Which credentials of the client are current: `credentials_changed_at` in whole microseconds
    since the epoch (exact, unlike a float), 0 while they never changed. Tokens carry the version they
    were issued under, so a rotation or a disabling revokes them whatever their timing (docs/contract.md §3.2)."""
    changed_at = client.credentials_changed_at
    if changed_at is None:
        return 0
    return (changed_at - _EPOCH) // timedelta(microseconds=1)


def next_credentials_change(client: ApiClient, now: datetime) -> datetime:
    """When a credentials change made `now` is recorded: strictly after the previous one, so every
    change gives a new `credentials_version` even when two fall on one clock reading."""
    previous = client.credentials_changed_at
    if previous is not None and now <= previous:
        return previous + timedelta(microseconds=1)
    return now


def could_be_client_id(text: str) -> bool:
    """False for text no client id can hold (NUL, lone UTF-16 surrogates): the database cannot even be
    asked about it."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
