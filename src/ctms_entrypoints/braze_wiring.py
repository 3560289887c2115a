"""The Braze destination's composition, for the container to call (docs/braze.md, "Configuration").

Kept out of `container.py` so that enabling Braze there is a provider or two:

    braze_http_client = providers.Resource(_braze_http_client_resource, settings)
    braze_destination = providers.Singleton(
        braze_destination_for, braze_http_client, engine,
        base_url=settings.provided.braze_url, api_key=settings.provided.braze_api_key, ...)
"""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.braze import HttpxBrazeGateway
from ctms_adapters.postgres import (
    PostgresBrazeDigestStore,
    PostgresBrazeSubscriptionGroupRepository,
)
from ctms_core.services.braze_destination import BrazeDestination

__all__ = ["braze_destination_for", "braze_http_client"]


def braze_http_client(max_concurrent: int) -> httpx.AsyncClient:
    """The HTTP client of the Braze requests: a kept-alive connection for each request in flight."""
    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=max_concurrent, max_keepalive_connections=max_concurrent
        )
    )


def braze_destination_for(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    *,
    base_url: str | None,
    api_key: str | None,
    timeout: float = 10.0,
    max_concurrent: int = 4,
    max_rate_limit_wait_s: float = 60.0,
) -> BrazeDestination:
    """The `braze` destination over `client`, its mapping and digests in `engine`'s database. Raises
    `ValueError` naming the missing settings when the URL or the key is not configured."""
    missing = [
        name
        for name, value in (("CTMS_BRAZE_URL", base_url), ("CTMS_BRAZE_API_KEY", api_key))
        if not value
    ]
    if missing or base_url is None or api_key is None:
        raise ValueError("The Braze destination needs " + ", ".join(missing))
    gateway = HttpxBrazeGateway(
        client,
        base_url=base_url,
        api_key=api_key,
        timeout=timeout,
        max_concurrent_requests=max_concurrent,
        max_rate_limit_wait_s=max_rate_limit_wait_s,
    )
    subscription_groups = PostgresBrazeSubscriptionGroupRepository(engine)
    return BrazeDestination(gateway, subscription_groups.load, PostgresBrazeDigestStore(engine))
