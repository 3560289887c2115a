"""Composition of `ctms sync`: database (configured or embedded), Acoustic gateway, sync service,
metrics endpoint, signal handling."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import signal
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

import httpx

from ctms_adapters.acoustic import HttpxAcousticGateway, SlotTransport
from ctms_core.ports.acoustic import AcousticGateway
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.services.sync import SyncPolicy, SyncService
from ctms_entrypoints.container import Container, MissingConfigurationError, build_container
from ctms_entrypoints.settings import Settings
from ctms_entrypoints.worker.loop import SyncWorker
from ctms_entrypoints.worker.metrics import BackgroundMetrics

logger = logging.getLogger("ctms.bin.acoustic_sync")

# Requests one contact may make (AddRecipient + three relational tables), plus an OAuth refresh.
_CALLS_PER_CONTACT = 5


def sync_policy(settings: Settings) -> SyncPolicy:
    """R§4.9's settings; the lease outlasts the slowest possible pass."""
    rounds = math.ceil(settings.acoustic_batch_limit / settings.acoustic_concurrency)
    lease_s = rounds * _CALLS_PER_CONTACT * settings.acoustic_timeout_s + 60
    return SyncPolicy(
        batch_limit=settings.acoustic_batch_limit,
        retry_limit=settings.acoustic_retry_limit,
        concurrency=settings.acoustic_concurrency,
        sync_enabled=settings.acoustic_sync_feature_flag,
        integration_enabled=settings.acoustic_integration_feature_flag,
        lease=timedelta(seconds=lease_s),
        erasure_retention=settings.erasure_address_retention,
    )


def acoustic_gateway(settings: Settings, client: httpx.AsyncClient) -> AcousticGateway:
    """The Acoustic gateway of `settings` over `client`; every credential and table id is required."""
    required = {
        "CTMS_ACOUSTIC_CLIENT_ID": settings.acoustic_client_id,
        "CTMS_ACOUSTIC_CLIENT_SECRET": settings.acoustic_client_secret,
        "CTMS_ACOUSTIC_REFRESH_TOKEN": settings.acoustic_refresh_token,
        "CTMS_ACOUSTIC_MAIN_TABLE_ID": settings.acoustic_main_table_id,
        "CTMS_ACOUSTIC_NEWSLETTER_TABLE_ID": settings.acoustic_newsletter_table_id,
        "CTMS_ACOUSTIC_WAITLIST_TABLE_ID": settings.acoustic_waitlist_table_id,
        "CTMS_ACOUSTIC_PRODUCT_SUBSCRIPTIONS_ID": settings.acoustic_product_subscriptions_id,
    }
    missing = [name for name, value in required.items() if value is None or value == ""]
    if missing:
        raise MissingConfigurationError("The Acoustic integration needs " + ", ".join(missing))
    return HttpxAcousticGateway(
        client,
        base_url=settings.acoustic_api_base_url,
        client_id=str(settings.acoustic_client_id),
        client_secret=str(settings.acoustic_client_secret),
        refresh_token=str(settings.acoustic_refresh_token),
        main_table_id=str(settings.acoustic_main_table_id),
        newsletter_table_id=str(settings.acoustic_newsletter_table_id),
        waitlist_table_id=str(settings.acoustic_waitlist_table_id),
        product_table_id=str(settings.acoustic_product_subscriptions_id),
        timeout=settings.acoustic_timeout_s,
    )


def build_worker(
    settings: Settings,
    container: Container,
    client: httpx.AsyncClient,
    metrics: BackgroundMetrics,
    *,
    policy: SyncPolicy | None = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> SyncWorker:
    """The loop `ctms sync` runs, on `container`'s database and `client`. `policy` replaces
    `sync_policy(settings)` (tests shorten the backoff, which has no setting); `uniform` draws the
    jitter."""
    gateway = (
        acoustic_gateway(settings, client) if settings.acoustic_integration_feature_flag else None
    )
    uow_factory: Callable[[], UnitOfWork] = cast(Any, container.uow_factory())
    service = SyncService(
        uow_factory,
        gateway,
        container.clock(),
        policy or sync_policy(settings),
        observer=metrics,
        uniform=uniform,
    )
    return SyncWorker(
        service,
        metrics,
        loop_min_secs=settings.acoustic_loop_min_secs,
        healthcheck_path=settings.background_healthcheck_path,
        pushgateway_url=settings.prometheus_pushgateway_url,
    )


def acoustic_http_client(concurrency: int) -> httpx.AsyncClient:
    """The HTTP client of the Acoustic uploads: a connection for each of the `concurrency` uploads in
    flight, and one more for the OAuth refresh (see `SlotTransport`)."""
    return httpx.AsyncClient(transport=SlotTransport(concurrency + 1))


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> int:
    """Run the loop until SIGTERM/SIGINT (or `stop`); the pass in progress finishes first."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    logger.info(
        "Setting up sync_service.",
        extra={"sync_feature_flag": settings.acoustic_sync_feature_flag},
    )
    if not settings.acoustic_sync_feature_flag:
        # R§4.2: with the flag off the loop does not run; stay alive (and healthy) until stopped
        # rather than exit, so a supervisor does not restart the process forever.
        logger.info("CTMS_ACOUSTIC_SYNC_FEATURE_FLAG is false: not syncing.")
    container = build_container(settings)
    metrics = BackgroundMetrics()
    if settings.background_metrics_port:
        metrics.serve(settings.background_metrics_port)
    try:
        async with acoustic_http_client(settings.acoustic_concurrency) as client:
            await build_worker(settings, container, client, metrics).run(stop)
    finally:
        engine = container.engine()
        if engine is not None:
            await engine.dispose()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    logger.info("Sync worker stopped.")
    return 0
