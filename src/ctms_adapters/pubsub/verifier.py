"""`PushTokenVerifier` for Google-signed OIDC ID tokens (docs/contract.md §8.2), with joserfc.

Only RS256 is accepted (`alg: none`, HS* with the public key as secret and every other algorithm are
refused before any key is looked at); the key must come from the issuer's key set by `kid`; `iss` must be
Google's, `aud` the expected audience, and `exp`/`iat` must hold within `leeway` seconds. Results are not
cached: verifying one RS256 signature costs microseconds, and nothing can then outlive the token's `exp`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from ctms_adapters.pubsub.jwks import JwksFetcher, JwksUnavailableError
from ctms_core.domain.pubsub import PushTokenRejected, PushVerificationUnavailable

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
_ALGORITHM = "RS256"


def _header_of(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise PushTokenRejected("not a signed JWT")
    encoded = parts[0] + "=" * (-len(parts[0]) % 4)
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded))
    except (ValueError, TypeError) as error:
        raise PushTokenRejected("unreadable header") from error
    if not isinstance(header, dict):
        raise PushTokenRejected("unreadable header")
    return header


class GoogleOidcVerifier:
    def __init__(
        self,
        keys: JwksFetcher,
        *,
        leeway: int = 60,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._leeway = leeway
        self._now = now

    async def verify(self, token: str, *, audience: str) -> Mapping[str, Any]:
        header = _header_of(token)
        if header.get("alg") != _ALGORITHM:
            raise PushTokenRejected(f"algorithm {header.get('alg')!r} is not {_ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise PushTokenRejected("no key id")
        try:
            key = await self._keys.key(kid)
        except JwksUnavailableError as error:
            raise PushVerificationUnavailable(str(error)) from error
        if key is None:
            raise PushTokenRejected(f"unknown key id {kid!r}")
        try:
            decoded = jwt.decode(token, key, algorithms=[_ALGORITHM])
            registry = JWTClaimsRegistry(
                now=int(self._now()),
                leeway=self._leeway,
                iss={"essential": True, "values": list(GOOGLE_ISSUERS)},
                aud={"essential": True, "value": audience},
                exp={"essential": True},
                iat={"essential": True},
            )
            registry.validate(decoded.claims)
        except JoseError as error:
            raise PushTokenRejected(f"{type(error).__name__}: {error}") from error
        except (ValueError, TypeError) as error:
            raise PushTokenRejected(f"invalid token: {error}") from error
        claims: dict[str, Any] = dict(decoded.claims)
        return claims
