"""Stripe fixtures: the ingest service on the in-memory Stripe store, and the reference sample objects."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from ctms_adapters.memory import ManualClock
from ctms_adapters.memory.stripe import InMemoryStripeStore, InMemoryStripeUnitOfWork
from ctms_core.ports.stripe import StripeUnitOfWork
from ctms_core.services.stripe import StripeIngestService

DATA = Path(__file__).parent / "data"


@cache
def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


def sample(name: str) -> dict[str, Any]:
    """A fresh deep copy of a reference sample: `customer_01`, `subscription_01` or `invoice_01`."""
    return copy.deepcopy(_load(name))


@pytest.fixture
def stripe_store() -> InMemoryStripeStore:
    return InMemoryStripeStore()


@pytest.fixture
def stripe_uow_factory(stripe_store: InMemoryStripeStore) -> Callable[[], StripeUnitOfWork]:
    return lambda: InMemoryStripeUnitOfWork(stripe_store)


@pytest.fixture
def stripe_service(
    stripe_uow_factory: Callable[[], StripeUnitOfWork], clock: ManualClock
) -> StripeIngestService:
    return StripeIngestService(stripe_uow_factory, clock)
