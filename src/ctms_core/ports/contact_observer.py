"""The counters the contact use cases publish (docs/contract.md §11.5), as `SyncService` publishes its own
through `SyncObserver`: the use case says what happened, the metrics adapter counts it. The API's
`Metrics` implements this port; processes without metrics use `NO_CONTACT_OBSERVER`."""

from __future__ import annotations

from typing import Final, Protocol


class ContactObserver(Protocol):
    def count_pending_acoustic_sync(self, contacts: int) -> None:
        """`contacts` contacts (writes or erasures) were committed to the sync queue."""
        ...

    def count_legacy_waitlists_request(self) -> None:
        """A committed write carried legacy waitlist input that changed something (docs/contract.md §6)."""
        ...

    def count_contact_write_retries(self, retries: int) -> None:
        """A committed write started over `retries` times because a concurrent write came first."""
        ...

    def count_erasure_addresses_dropped(self, contacts: int) -> None:
        """Queued erasures of `contacts` contacts waited too long and lost their address."""
        ...


class _NoContactObserver:
    def count_pending_acoustic_sync(self, contacts: int) -> None:
        pass

    def count_legacy_waitlists_request(self) -> None:
        pass

    def count_contact_write_retries(self, retries: int) -> None:
        pass

    def count_erasure_addresses_dropped(self, contacts: int) -> None:
        pass


NO_CONTACT_OBSERVER: Final[ContactObserver] = _NoContactObserver()
