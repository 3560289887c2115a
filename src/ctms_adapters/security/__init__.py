"""Security adapters: argon2id client-secret hashing and HS256 access tokens."""

from ctms_adapters.security.passwords import (
    CLIENT_SECRET_PREFIX,
    Argon2PasswordHasher,
    generate_client_secret,
)
from ctms_adapters.security.tokens import JWT_ALGORITHM, JwtTokenCodec

__all__ = [
    "CLIENT_SECRET_PREFIX",
    "JWT_ALGORITHM",
    "Argon2PasswordHasher",
    "JwtTokenCodec",
    "generate_client_secret",
]
