"""Resolving a container provider whether it is sync or async."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


async def resolved(provider: Callable[[], Any]) -> Any:
    """A provider's value, awaited when the provider is async (it depends on an async Resource); a test
    that overrides the Resource with a plain object gets the plain value."""
    value = provider()
    return await value if inspect.isawaitable(value) else value
