"""Security adapters: argon2id client-secret hashing and HS256 access tokens."""

from ctms_adapters.security.passwords import (
    Argon2PasswordHasher,
)
from ctms_adapters.security.tokens import JWT_ALGORITHM, JwtTokenCodec

__all__ = [
    "JWT_ALGORITHM",
    "Argon2PasswordHasher",
    "JwtTokenCodec",
]
