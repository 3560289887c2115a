"""A sync destination for tests of the destination-independent queue and worker: it records what it is
given and can be taken down (every contact fails as an `outage`) or made to refuse chosen contacts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from ctms_core.ports.destinations import Delivery, DeliveryFailure, DeliveryReport


@dataclass
class RecordingDestination:
    name: str
    #: While true, every delivery fails as an outage (the destination gave no answer).
    down: bool = False
    #: Contacts refused (`rejected`) whatever happens.
    refused: set[uuid.UUID] = field(default_factory=set)
    delivered: list[Delivery] = field(default_factory=list)
    calls: int = 0

    async def deliver(self, deliveries: Sequence[Delivery]) -> DeliveryReport:
        self.calls += 1
        failed: list[DeliveryFailure] = []
        for delivery in deliveries:
            if self.down:
                failed.append(
                    DeliveryFailure(email_id=delivery.email_id, kind="outage", reason="down")
                )
            elif delivery.email_id in self.refused:
                failed.append(
                    DeliveryFailure(email_id=delivery.email_id, kind="rejected", reason="refused")
                )
            else:
                self.delivered.append(delivery)
        return DeliveryReport(failed=tuple(failed), requests=1)

    def synced_ids(self) -> set[uuid.UUID]:
        return {d.email_id for d in self.delivered if not d.is_erasure}

    def erased_ids(self) -> set[uuid.UUID]:
        return {d.email_id for d in self.delivered if d.is_erasure}
