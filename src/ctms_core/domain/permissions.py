"""Operation permissions (docs/contract.md §14.1): what an API client may do, granted through roles.

A client holds roles; a role groups permissions. The rule of `is_permitted`:

* the `admin` role, or a role granting the `admin` permission, passes every check;
* a client without any role passes every check unless permissions are enforced
  (`CTMS_ENFORCE_PERMISSIONS`), so deployments that predate roles keep working;
* otherwise the client needs at least one of the permissions the operation requires.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from ctms_core.domain.api_client import ApiClient
from ctms_core.domain.errors import BadRequestError, PermissionDeniedError

CONTACTS_READ: Final = "contacts:read"
CONTACTS_WRITE: Final = "contacts:write"
CONTACTS_DELETE: Final = "contacts:delete"
STRIPE_INGEST: Final = "stripe:ingest"
ADMIN: Final = "admin"
ADMIN_ROLE: Final = "admin"

#: The permissions every database starts with (migration 0002), with their descriptions.
STANDARD_PERMISSIONS: Final[Mapping[str, str]] = {
    CONTACTS_READ: "Read contacts: GET /ctms, /ctms/{email_id}, /updates, /identities, /identity",
    CONTACTS_WRITE: "Create and change contacts: POST /ctms, PUT and PATCH /ctms/{email_id}",
    CONTACTS_DELETE: "Erase contacts: DELETE /ctms/{primary_email}",
    STRIPE_INGEST: "Ingest Stripe objects: POST /stripe",
    ADMIN: "Every operation",
}
ADMIN_ROLE_DESCRIPTION: Final = "Passes every permission check"

_NAME = re.compile(r"^[-_.:a-zA-Z0-9]+$")
_NAME_MAX_LENGTH = 255


class Role(msgspec.Struct, frozen=True, kw_only=True):
    """A named group of permissions; `permissions` and `clients` (the ids holding it) are sorted."""

    name: str
    description: str | None = None
    permissions: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()


class Permission(msgspec.Struct, frozen=True, kw_only=True):
    """A named right; `roles` lists, sorted, the roles granting it."""

    name: str
    description: str | None = None
    roles: tuple[str, ...] = ()


def check_name(kind: str, name: str) -> str:
    """A role or permission name: 1 to 255 letters, digits, `-`, `_`, `.` or `:` (else 400 / exit 2)."""
    if not _NAME.match(name) or len(name) > _NAME_MAX_LENGTH:
        raise BadRequestError(
            f"{kind} name {name!r} should have 1 to {_NAME_MAX_LENGTH} letters, digits, "
            "'-', '_', '.' or ':'"
        )
    return name


def is_admin(client: ApiClient) -> bool:
    return ADMIN_ROLE in client.roles or ADMIN in client.permissions


def is_permitted(client: ApiClient, required: Sequence[str], *, enforce: bool) -> bool:
    """Whether `client` may run an operation that needs any one of `required` (see the module doc)."""
    if not client.roles:
        return not enforce
    return is_admin(client) or not client.permissions.isdisjoint(required)


def ensure_permitted(client: ApiClient, required: Sequence[str], *, enforce: bool) -> None:
    """Raise `PermissionDeniedError` (403 `Permission(s) required: ...`) unless `is_permitted`."""
    if not is_permitted(client, required, enforce=enforce):
        raise PermissionDeniedError(required)
