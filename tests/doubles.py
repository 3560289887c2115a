"""Typed test doubles shared by the test tiers."""

from __future__ import annotations


class PlainHasher:
    """A fast, obviously-fake `PasswordHasher`, so tests exercise the rules, not argon2."""

    def hash(self, secret: str) -> str:
        return "plain$" + secret

    def verify(self, hashed: str, secret: str) -> bool:
        return hashed == "plain$" + secret


class RecordingContactObserver:
    """A `ContactObserver` that keeps the counters the contact use cases publish."""

    def __init__(self) -> None:
        self.pending_acoustic_sync = 0
        self.legacy_waitlists_requests = 0
        self.contact_write_retries = 0
        self.erasure_addresses_dropped: list[int] = []

    def count_pending_acoustic_sync(self, contacts: int) -> None:
        self.pending_acoustic_sync += contacts

    def count_legacy_waitlists_request(self) -> None:
        self.legacy_waitlists_requests += 1

    def count_contact_write_retries(self, retries: int) -> None:
        self.contact_write_retries += retries

    def count_erasure_addresses_dropped(self, contacts: int) -> None:
        self.erasure_addresses_dropped.append(contacts)
