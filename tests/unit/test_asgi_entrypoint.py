"""The server process's ASGI factory (`ctms_entrypoints.asgi`)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from litestar import Litestar

from ctms_entrypoints.asgi import freeze_startup_objects


class _Node:
    partner: _Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_startup_objects_are_kept_out_of_full_garbage_collections(unfrozen: None) -> None:
    """Full collections then skip everything alive at start-up: no 50-60 ms pause under load."""
    survivors = [_Node() for _ in range(1000)]
    cycle = _Node()
    cycle.partner = cycle  # garbage only a collection frees
    garbage = weakref.ref(cycle)
    del cycle

    freeze_startup_objects(Litestar())

    assert gc.get_freeze_count() >= len(survivors)
    assert garbage() is None  # collected before freezing, not kept forever
