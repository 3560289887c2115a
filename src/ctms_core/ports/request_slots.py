"""The request-slots port: a deployment-wide cap on the requests in flight against one upstream.

Acoustic allows an account a fixed number of concurrent XML API requests (10 by default), whatever
number of `ctms sync` processes send them. Every request to Acoustic (the OAuth token grant included)
is made inside `async with slots.acquire():`, and an adapter shared by every process (PostgreSQL)
makes sure no more than the configured number are held at once, across the whole deployment. A slot
held by a process that died comes back when its lease ends (docs/acoustic.md, "Deployment-wide limit").
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

__all__ = ["RequestSlots"]


class RequestSlots(Protocol):
    """A counting semaphore shared by every worker of the deployment."""

    def acquire(self) -> AbstractAsyncContextManager[None]:
        """Wait for a free slot, hold it for the `async with` block, then give it back."""
        ...
