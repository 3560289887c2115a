"""HS256 access tokens for `POST /token` and bearer authentication, with joserfc."""

from __future__ import annotations

import math
import warnings
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import OctKey
from joserfc.jws import JWSRegistry

from ctms_core.ports.security import AccessTokenClaims, InvalidTokenError

__all__ = ["JWT_ALGORITHM", "JwtTokenCodec"]

JWT_ALGORITHM = "HS256"
# Private claim: the client's credentials version the token was issued under (see `TokenCodec`).
CREDENTIALS_VERSION_CLAIM = "ctms_cv"

# Only HS256 is accepted: "none", other HMAC sizes and asymmetric algorithms are rejected before the
# signature is even looked at. Unknown header parameters (including `crit`) are rejected too.
_REGISTRY = JWSRegistry(algorithms=[JWT_ALGORITHM])


class JwtTokenCodec:
    """`TokenCodec` port: compact JWS tokens signed with HS256 and `CTMS_SECRET_KEY`.

    Tokens carry `sub`, `exp` and `iat` (unix seconds) and `ctms_cv` (the client's credentials
    version, an integer) under the header `{"alg":"HS256","typ":"JWT"}`. Tokens minted by CTMS v3
    carry only `sub` and `exp` (`issued_at=None`), those of earlier releases no `ctms_cv`
    (`credentials_version=None`); they stay valid.

    Expiry has no leeway: a token is rejected once `exp <= now`. The same service mints and
    checks these tokens, so clock skew only matters within the last second of a token's life.
    A future `iat` is not rejected: only holders of the key can mint tokens, and replicas with
    slightly different clocks must accept each other's tokens.
    """

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("the token secret key must not be empty")
        # CTMS_SECRET_KEY has always been any string (used as its UTF-8 bytes, like CTMS v3 did).
        # joserfc warns about keys shorter than 112 bits; accepting them is a deliberate
        # compatibility decision, so silence exactly that warning and nothing else.
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Key size should be >= 112 bits", category=SecurityWarning
            )
            self._key = OctKey.import_key(secret_key)

    def encode(
        self,
        subject: str,
        *,
        issued_at: datetime,
        expires_at: datetime,
        credentials_version: int | None = None,
    ) -> str:
        """A signed token for `subject`; times are truncated to whole seconds."""
        claims: dict[str, Any] = {
            "sub": subject,
            "exp": _to_numeric_date(expires_at, "expires_at"),
            "iat": _to_numeric_date(issued_at, "issued_at"),
        }
        if credentials_version is not None:
            claims[CREDENTIALS_VERSION_CLAIM] = credentials_version
        return jwt.encode(
            {"alg": JWT_ALGORITHM, "typ": "JWT"},
            claims,
            self._key,
            registry=_REGISTRY,
            default_type=None,
        )

    def decode(self, token: str, *, now: datetime) -> AccessTokenClaims:
        """The claims of an unexpired token signed by us; `InvalidTokenError` otherwise."""
        now_ts = _aware(now, "now").timestamp()
        try:
            claims = jwt.decode(token, self._key, registry=_REGISTRY).claims
        except Exception as error:
            # Any failure to parse or verify means the token is not ours. joserfc raises
            # JoseError for most problems, but plain TypeError/ValueError/RecursionError for some
            # malformed input (e.g. a header that is a JSON string): fail closed on all of them.
            raise InvalidTokenError("the token is malformed or not signed with our key") from error

        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidTokenError("the token has no subject")
        if "exp" not in claims:
            raise InvalidTokenError("the token has no expiry")
        expires = _claim_time(claims, "exp")
        if expires <= now_ts:
            raise InvalidTokenError("the token has expired")
        issued = _claim_time(claims, "iat") if "iat" in claims else None
        version = claims.get(CREDENTIALS_VERSION_CLAIM)
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
            raise InvalidTokenError(f"the token's {CREDENTIALS_VERSION_CLAIM} is not an integer")
        return AccessTokenClaims(
            subject=subject,
            expires_at=_from_numeric_date(expires, "exp"),
            issued_at=None if issued is None else _from_numeric_date(issued, "iat"),
            credentials_version=version,
        )


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return moment


def _to_numeric_date(moment: datetime, name: str) -> int:
    return math.floor(_aware(moment, name).timestamp())


def _claim_time(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    # NumericDate is a JSON number; bool is an int in Python, and NaN/inf would never expire.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTokenError(f"the token's {name} claim is not a NumericDate")
    try:
        number = float(value)
    except OverflowError as error:
        raise InvalidTokenError(f"the token's {name} claim is out of range") from error
    if not math.isfinite(number):
        raise InvalidTokenError(f"the token's {name} claim is not a NumericDate")
    return number


def _from_numeric_date(value: float, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise InvalidTokenError(f"the token's {name} claim is out of range") from error
