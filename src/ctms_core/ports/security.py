"""Ports for credential hashing and access tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class PasswordHasher(Protocol):
    """Hashes and verifies API client secrets (argon2id PHC strings in production)."""

    def hash(self, secret: str) -> str: ...

    def verify(self, hashed: str, secret: str) -> bool:
        """True when `secret` matches `hashed`; False for a mismatch or a malformed hash."""
        ...


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """What CTMS reads from a bearer token: `sub` is `"<namespace>:<name>"`."""

    subject: str
    expires_at: datetime
    issued_at: datetime | None  # None for tokens minted by CTMS v3 (no `iat` claim)
    # The client's `credentials_version` the token was issued under; None for tokens minted before
    # tokens carried it (CTMS v3 and earlier releases of this one).
    credentials_version: int | None = None


class InvalidTokenError(Exception):
    """The token is malformed, not signed with our key and algorithm, expired, or lacks `sub`."""


class TokenCodec(Protocol):
    """Mints and reads the HS256 access tokens of `POST /token`."""

    def encode(
        self,
        subject: str,
        *,
        issued_at: datetime,
        expires_at: datetime,
        credentials_version: int | None = None,
    ) -> str: ...

    def decode(self, token: str, *, now: datetime) -> AccessTokenClaims:
        """Verify signature, algorithm and expiry; raise `InvalidTokenError` otherwise."""
        ...
