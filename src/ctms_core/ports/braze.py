"""The Braze port: send users' attributes objects, delete users, and what became of each one.

Unlike Acoustic's one-contact calls, Braze takes many users per request (`POST /users/track`: 75
attributes objects; `POST /users/delete`: 50 `external_ids`), and a request can succeed for some users
and fail for others. So the gateway never raises for Braze's answers: it returns, for every user it was
given, whether Braze accepted it or why not (`BrazeFailure.kind`). What to do about a failure (retry
later, give up) is the sync policy's decision, not the gateway's (docs/braze.md, "Errors and retries").
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Final, Literal, Protocol

import msgspec

from ctms_core.domain.braze import BrazeConfiguration, BrazeUser, SubscriptionGroupKind

__all__ = [
    "DELETE_BATCH_SIZE",
    "TRACK_BATCH_SIZE",
    "BrazeDigestStore",
    "BrazeFailure",
    "BrazeFailureKind",
    "BrazeGateway",
    "BrazeSubscriptionGroupRepository",
    "DeleteResult",
    "TrackResult",
]

# Braze's documented limits per request.
TRACK_BATCH_SIZE: Final = 75
DELETE_BATCH_SIZE: Final = 50

BrazeFailureKind = Literal[
    # A 2xx answer listed this user's object in `errors`: Braze refused this user's data only.
    "rejected",
    # No usable answer for the whole request: HTTP 5xx, a timeout, a connection error, a body that is
    # not the JSON object Braze answers with. Nothing says Braze applied the request; resending is safe.
    "unavailable",
    # HTTP 429 and the rate-limit reset was further away than the gateway may wait.
    "rate_limited",
    # HTTP 401 or 403: the API key is invalid or lacks the endpoint's permission. Nothing about the
    # users; every request fails alike until the configuration is fixed.
    "unauthorized",
    # Braze refused the whole request: another 4xx (400 malformed request, 404 wrong URL, 413 too large).
    "refused",
]


class BrazeFailure(msgspec.Struct, frozen=True, kw_only=True):
    """One user Braze did not accept. `reason` is safe to log and store: it never holds an e-mail
    address, a name or the API key."""

    external_id: str
    kind: BrazeFailureKind
    reason: str


class TrackResult(msgspec.Struct, frozen=True, kw_only=True):
    """What became of each user given to `track`: every `external_id` is in exactly one of the two."""

    succeeded: tuple[str, ...] = ()
    failed: tuple[BrazeFailure, ...] = ()
    requests: int = 0  # `POST /users/track` requests sent, retries after a 429 included


class DeleteResult(msgspec.Struct, frozen=True, kw_only=True):
    """What became of each `external_id` given to `delete`. Braze deletes asynchronously and does not
    report unknown users, so a user already gone counts as deleted: a retried erasure completes."""

    deleted: tuple[str, ...] = ()
    failed: tuple[BrazeFailure, ...] = ()
    requests: int = 0  # `POST /users/delete` requests sent, retries after a 429 included


class BrazeGateway(Protocol):
    """Braze's REST API, as CTMS uses it."""

    async def track(self, users: Sequence[BrazeUser]) -> TrackResult:
        """Send the users' attributes objects, `TRACK_BATCH_SIZE` per request. A 429 waits for the
        rate-limit reset (bounded) and resends; any other failure fails the users it concerns."""
        ...

    async def delete(self, external_ids: Sequence[str]) -> DeleteResult:
        """Delete the users, `DELETE_BATCH_SIZE` per request, with the same error handling as `track`."""
        ...


class BrazeSubscriptionGroupRepository(Protocol):
    """Which Braze subscription group each newsletter (and waitlist) name stands for (docs/braze.md,
    "Subscription groups"): one row per `(kind, name)`, managed with `ctms braze newsletters|waitlists`.
    Each method is its own transaction."""

    async def load(self) -> BrazeConfiguration:
        """Every mapping, as the destination uses them."""
        ...

    async def list(self, kind: SubscriptionGroupKind) -> list[tuple[str, str]]:
        """`(name, group_id)` of one kind, by name."""
        ...

    async def add(self, kind: SubscriptionGroupKind, name: str, group_id: str) -> None:
        """Map `name` to `group_id`, replacing the group it had."""
        ...

    async def remove(self, kind: SubscriptionGroupKind, name: str) -> str | None:
        """Unmap `name`; the group it had, or None when it had none."""
        ...


class BrazeDigestStore(Protocol):
    """Per contact, the attribute digests of what Braze last accepted (`BrazeUser.digests`), so that
    only changed attributes are sent (docs/braze.md, "Billable attributes only when they changed").
    Each method is its own transaction."""

    async def load(self, email_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, str]]:
        """The stored digests of those contacts that have some."""
        ...

    async def save(self, digests: Mapping[uuid.UUID, Mapping[str, str]]) -> None:
        """Replace the stored digests of each contact given."""
        ...

    async def forget(self, email_ids: Sequence[uuid.UUID]) -> None:
        """Drop the digests of those contacts (erased, or to be sent in full again)."""
        ...
