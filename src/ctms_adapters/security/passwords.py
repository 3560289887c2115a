"""argon2id hashing of API client secrets, compatible with the PHC strings CTMS v3 stored."""

from __future__ import annotations

from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import VerificationError

__all__ = ["Argon2PasswordHasher"]


class Argon2PasswordHasher:
    """`PasswordHasher` port backed by argon2-cffi.

    New hashes use argon2-cffi's defaults: argon2id, 64 MiB, 3 iterations, parallelism 4,
    16-byte salt, 32-byte digest, encoded as `$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>`:
    the parameters and format of the hashes CTMS v3 wrote through passlib. Verification reads
    the type and costs from the stored string, so argon2i hashes and other costs verify too.

    Both methods are CPU-bound (tens of milliseconds): on an event loop, run them in a thread.
    """

    def __init__(self) -> None:
        self._argon2 = _Argon2()

    def hash(self, secret: str) -> str:
        """A freshly salted argon2id PHC string for `secret`."""
        return self._argon2.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        """True when `secret` matches `hashed`; False on a mismatch or a non-argon2 `hashed`."""
        try:
            return self._argon2.verify(hashed, secret)
        except (VerificationError, ValueError):
            # VerificationError: mismatch or a corrupt argon2 string. ValueError: InvalidHashError
            # (not an argon2 string at all) or text that does not encode (non-ASCII hash,
            # lone surrogates in the secret).
            return False
