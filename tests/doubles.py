"""Typed test doubles shared by the test tiers."""

from __future__ import annotations


class PlainHasher:
    """A fast, obviously-fake `PasswordHasher`, so tests exercise the rules, not argon2."""

    def hash(self, secret: str) -> str:
        return "plain$" + secret

    def verify(self, hashed: str, secret: str) -> bool:
        return hashed == "plain$" + secret
