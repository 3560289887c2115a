"""OAuth2 client-credentials tokens and bearer authentication (docs/contract.md §2.2, §3.1, §3.2)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ctms_core.domain.api_client import (
    TOKEN_NAMESPACE,
    ApiClient,
    could_be_client_id,
    credentials_version,
)
from ctms_core.domain.errors import (
    AuthenticationError,
    ClientDisabledError,
    TokenRequestRejectedError,
)
from ctms_core.domain.permissions import ensure_permitted
from ctms_core.domain.throttling import FailureThrottle
from ctms_core.ports.clock import Clock
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.ports.security import (
    AccessTokenClaims,
    InvalidTokenError,
    PasswordHasher,
    TokenCodec,
)

LAST_ACCESS_INTERVAL = timedelta(minutes=1)
# Verified tokens remembered at once: several per client at most (a token per process and hour), so the
# bound only matters against a flood of distinct valid tokens; the oldest entry makes room.
VERIFIED_TOKENS_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    token_type: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class _VerifiedToken:
    client: ApiClient
    expires_at: datetime  # the token's own `exp`
    recheck_at: datetime  # when the client's record must be read again


class AuthService:
    """Issues access tokens to API clients and tells who is behind a bearer token."""

    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        hasher: PasswordHasher,
        tokens: TokenCodec,
        clock: Clock,
        token_lifetime: timedelta,
        *,
        enforce_permissions: bool = False,
        recheck_interval: timedelta = timedelta(0),
        throttle: FailureThrottle | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._token_lifetime = token_lifetime
        self._enforce_permissions = enforce_permissions
        self._recheck_interval = recheck_interval
        self._verified: dict[str, _VerifiedToken] = {}
        self._throttle = throttle or FailureThrottle({})
        self._dummy_hash: str | None = None

    async def issue_token(
        self, client_id: str | None, client_secret: str | None, *, address: str | None = None
    ) -> IssuedToken:
        """POST /token: exchange client credentials for an HS256 access token.

        Rules (docs/contract.md §3.1): missing credentials, an unknown client, a disabled client and a wrong secret are all
        refused alike (`TokenRequestRejectedError`, whose `reason` only the log sees), and cost alike: the
        secret is verified in every case, against a dummy hash of the same argon2 costs for an unknown
        client, so the answer's timing does not tell which client ids exist.
        Failed attempts are counted per client id and per caller `address` (attempts still being checked
        included); once either has failed too often within the throttle's window, requests are refused
        (`TooManyAttemptsError`, 429) before any check, even with the right secret, until the window has
        passed. Attempts that could not be checked (the database failed) are not counted.
        The token carries `sub = "api_client:<id>"`, `exp`, `iat` and the client's credentials version
        (for revocation, docs/contract.md §3.2).
        """
        if not client_id or not client_secret:
            raise TokenRequestRejectedError("No credentials")
        attempt = self._throttle.attempt(
            (("client", client_id), ("address", address)), self._clock.now()
        )
        try:
            client = None
            if could_be_client_id(client_id):  # else never sent to the database
                async with self._uow_factory() as uow:
                    client = await uow.api_clients.get(client_id)
            hashed = client.hashed_secret if client else await self._unknown_client_hash()
            # argon2 costs tens of milliseconds of CPU: keep the event loop free while it runs.
            verified = await asyncio.to_thread(self._hasher.verify, hashed, client_secret)
        except BaseException:  # the credentials could not be checked (database down, ...)
            self._throttle.forget(attempt)
            raise
        if client is None:
            raise TokenRequestRejectedError("No client record")
        if not client.enabled:
            raise TokenRequestRejectedError("Client disabled")
        if not verified:
            raise TokenRequestRejectedError("Bad credentials")
        self._throttle.forget(attempt)
        now = self._clock.now()
        token = self._tokens.encode(
            f"{TOKEN_NAMESPACE}:{client.client_id}",
            issued_at=now,
            expires_at=now + self._token_lifetime,
            credentials_version=credentials_version(client),
        )
        return IssuedToken(
            access_token=token,
            token_type="bearer",  # noqa: S106 - the OAuth2 token type, not a secret
            expires_in=int(self._token_lifetime.total_seconds()),
        )

    async def _unknown_client_hash(self) -> str:
        """A hash no secret matches, made by the same hasher (same argon2 costs) as real ones."""
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(self._hasher.hash, secrets.token_urlsafe(32))
        return self._dummy_hash

    def client_id_of(self, token: str) -> str | None:
        """The client id a well-signed token names, for logs and metrics before the lookup (docs/contract.md §2.2)."""
        try:
            claims = self._tokens.decode(token, now=self._clock.now())
        except InvalidTokenError:
            return None
        namespace, separator, name = claims.subject.partition(":")
        if not separator or namespace != TOKEN_NAMESPACE or not could_be_client_id(name):
            return None
        return name

    async def authenticate(self, token: str) -> ApiClient:
        """Resolve a bearer token to an enabled API client.

        Rules (docs/contract.md §2.2): a bad signature, expiry or a `sub` without `:` → "No or bad token"; a namespace other
        than `api_client` → "Bad namespace"; an unknown client → "No client record" (all 401); a disabled
        client → `ClientDisabledError` (400, as v3.3). A token issued before the client's credentials last
        changed (secret rotated, client disabled) is revoked → 401 "Token revoked"; a v3 token without `iat`
        counts as issued at `exp - lifetime`. A token carrying the credentials version it was issued under
        is valid only while that version is the client's current one: every token issued before a change
        completed is refused, whatever the clock said. A token without it (issued by an older release)
        is refused when its whole-second `iat` is before the change's exact time, so a token minted in
        the same second as a change is refused too. A `sub` naming a client id no client can have (NUL,
        lone surrogates) is "No client record".
        Access is recorded in `last_access` at most once a minute per client. The client comes with its
        roles and permissions (read with it, in the same query) for `authorize`.

        A token that passed every check is trusted for `recheck_interval` (never past its `exp`) without
        decoding it or reading the client again: the hot path of every API call (docs/contract.md §16.1). Rotating a
        secret, disabling a client or changing its roles therefore takes effect within that interval
        (`CTMS_TOKEN_CACHE_SECONDS`, 1 s by default; 0 checks every request). Refusals are never
        remembered.
        """
        now = self._clock.now()
        remembered = self._verified.get(token)
        if remembered is not None:
            if now < remembered.recheck_at and now < remembered.expires_at:
                return remembered.client
            del self._verified[token]
        try:
            claims = self._tokens.decode(token, now=now)
        except InvalidTokenError:
            raise AuthenticationError("No or bad token") from None
        namespace, separator, name = claims.subject.partition(":")
        if not separator:
            raise AuthenticationError("No or bad token")
        if namespace != TOKEN_NAMESPACE:
            raise AuthenticationError("Bad namespace")
        if not could_be_client_id(name):
            raise AuthenticationError("No client record")
        async with self._uow_factory() as uow:
            client = await uow.api_clients.get(name)
            if client is None:
                raise AuthenticationError("No client record")
            if not client.enabled:
                raise ClientDisabledError
            if self._revoked(claims, client):
                raise AuthenticationError("Token revoked")
            if client.last_access is None or now - client.last_access >= LAST_ACCESS_INTERVAL:
                await uow.api_clients.record_access(client.client_id, now)
                await uow.commit()
        if self._recheck_interval > timedelta(0):
            self._remember(token, client, claims.expires_at, now + self._recheck_interval)
        return client

    def _revoked(self, claims: AccessTokenClaims, client: ApiClient) -> bool:
        if claims.credentials_version is not None:
            return claims.credentials_version != credentials_version(client)
        if client.credentials_changed_at is None:
            return False
        issued_at = claims.issued_at or (claims.expires_at - self._token_lifetime)
        return issued_at < client.credentials_changed_at

    def _remember(
        self, token: str, client: ApiClient, expires_at: datetime, recheck_at: datetime
    ) -> None:
        if len(self._verified) >= VERIFIED_TOKENS_LIMIT:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = _VerifiedToken(client, expires_at, recheck_at)

    def authorize(self, client: ApiClient, required: Sequence[str]) -> None:
        """Refuse (`PermissionDeniedError`, 403) a client that may not run an operation needing any of
        `required`; the rule is `ctms_core.domain.permissions.is_permitted`, with permissions enforced
        on clients without roles when the deployment says so (`CTMS_ENFORCE_PERMISSIONS`)."""
        ensure_permitted(client, required, enforce=self._enforce_permissions)
