"""Verifying the OIDC bearer token Google Pub/Sub sends with each push (docs/contract.md §8.2)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class PushTokenVerifier(Protocol):
    async def verify(self, token: str, *, audience: str) -> Mapping[str, Any]:
        """The claims of a valid token: signed with RS256 by a key of the issuer's key set, issued by
        Google, for `audience`, not expired. Raise `PushTokenRejected` ("Unknown key") for a token that
        fails any check and `PushVerificationUnavailable` ("Google authentication failure") when the
        keys cannot be fetched."""
        ...
