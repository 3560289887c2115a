"""The composition root: the only module that knows which adapter serves which port.

Every process gets its object graph here: the API (`create_app(container)`), the sync worker
(`container.sync_worker`) and the command line (`ctms ...`). Building the container connects to nothing;
the owner of the container releases what it opened with `await dispose(container)` when it stops.
Tests and embedders swap any provider with `build_container(settings, **overrides)`, e.g. the storage
with `build_container(settings, **memory_storage())` (docs/adr/0001-core-validation-and-composition.md).

The async Resources, the Acoustic and Braze HTTP clients, are declared at the root; providers that depend on them
(the gateway, the sync service, the worker) return awaitables, resolved with `resolved(provider)`, so
that a test overriding the client with a plain object gets plain values.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import httpx
from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

from ctms_adapters.acoustic import HttpxAcousticGateway, SlotTransport
from ctms_adapters.memory import InMemoryDatabaseHealth, InMemoryStore, InMemoryUnitOfWork
from ctms_adapters.memory.request_slots import InMemoryRequestSlots
from ctms_adapters.postgres import (
    PostgresBrazeDigestStore,
    PostgresDatabaseHealth,
    PostgresUnitOfWorkFactory,
    create_engine,
)
from ctms_adapters.postgres.acoustic_resync import PostgresResyncSelection
from ctms_adapters.postgres.request_slots import PostgresRequestSlots
from ctms_adapters.pubsub import GoogleOidcVerifier, JwksFetcher
from ctms_adapters.security import Argon2PasswordHasher, JwtTokenCodec
from ctms_adapters.system import RandomIdGenerator, SystemClock
from ctms_core.domain.acoustic import AcousticConfiguration
from ctms_core.domain.erasure import derive_erasure_salt
from ctms_core.domain.throttling import FailureThrottle, ThrottlePolicy
from ctms_core.ports.braze import DELETE_BATCH_SIZE, TRACK_BATCH_SIZE
from ctms_core.ports.clock import Clock
from ctms_core.ports.destinations import Delivery, DeliveryReport, SyncDestination
from ctms_core.ports.repositories import UnitOfWork
from ctms_core.ports.request_slots import RequestSlots
from ctms_core.services.access_control import AccessControlService
from ctms_core.services.acoustic_admin import AcousticAdminService
from ctms_core.services.acoustic_destination import AcousticDestination
from ctms_core.services.acoustic_resync import AcousticResyncService
from ctms_core.services.api_clients import ApiClientService
from ctms_core.services.auth import AuthService
from ctms_core.services.braze_resync import BrazeResyncService
from ctms_core.services.contacts import ContactService
from ctms_core.services.erasures import ErasureAuditService
from ctms_core.services.pubsub import PubSubIngestService, PushSettings
from ctms_core.services.stripe import StripeIngestService
from ctms_core.services.stripe_contacts import StripeContactToucher
from ctms_core.services.sync import SyncPolicy, SyncService
from ctms_core.services.waitlist_rules import CachedWaitlistRules, WaitlistRulesAdminService
from ctms_entrypoints.awaitables import resolved
from ctms_entrypoints.braze_wiring import braze_destination_for, braze_http_client
from ctms_entrypoints.http.acoustic import AcousticHeartbeat
from ctms_entrypoints.http.dependencies import ContactsApi, DatabaseHeartbeat
from ctms_entrypoints.http.dependencies import heartbeat_timeout as _heartbeat_timeout
from ctms_entrypoints.http.routes.stripe import StripeApi
from ctms_entrypoints.observability.metrics import Metrics, PoolConnections
from ctms_entrypoints.settings import Settings
from ctms_entrypoints.worker.loop import SyncWorker
from ctms_entrypoints.worker.metrics import BackgroundMetrics


def _engine_from_settings(settings: Settings) -> Any:
    if settings.async_db_url is None:
        raise RuntimeError(
            "No database URL: set CTMS_DB_URL, or run `ctms serve`, which starts the embedded one"
        )
    return create_engine(
        settings.async_db_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_in_seconds,
        pool_recycle=settings.db_pool_recycle_in_seconds,
        echo=settings.log_sqlalchemy,
        statement_timeout=settings.db_statement_timeout_seconds,
        connect_timeout=settings.db_connect_timeout_seconds,
    )


def _pool_connections(engine: Any, settings: Settings) -> PoolConnections:
    """What `ctms_db_pool_connections` reports: the engine's pool, once a database is configured (the
    engine is only built on the first scrape that finds one)."""

    def read() -> dict[str, int]:
        if settings.async_db_url is None:
            return {}
        pool = engine().sync_engine.pool
        return {"in_use": pool.checkedout(), "idle": pool.checkedin()}

    return read


def _secret_key(settings: Settings) -> str:
    if not settings.secret_key:
        raise RuntimeError("CTMS_SECRET_KEY is not set")
    return settings.secret_key


class MissingConfigurationError(RuntimeError):
    """A setting the requested service needs is not configured."""


def _erasure_salt(settings: Settings) -> bytes:
    secret = settings.erasure_hash_salt or settings.secret_key
    if not secret:
        raise MissingConfigurationError(
            "Erasures need CTMS_ERASURE_HASH_SALT or CTMS_SECRET_KEY to hash the erased addresses"
        )
    return derive_erasure_salt(secret)


def _erasure_retention(settings: Settings) -> timedelta | None:
    """How long an erased address may wait for delivery to Acoustic: None when sync is off, since
    nothing would ever deliver it (docs/permissions.md, "Erasure")."""
    return settings.erasure_address_retention if settings.acoustic_sync_feature_flag else None


def _token_throttle(settings: Settings) -> FailureThrottle:
    window = timedelta(seconds=settings.token_failure_window_seconds)
    return FailureThrottle(
        {
            "client": ThrottlePolicy(settings.token_failures_per_client, window),
            "address": ThrottlePolicy(settings.token_failures_per_address, window),
        }
    )


def _push_settings(settings: Settings) -> PushSettings:
    return PushSettings(
        client=settings.pubsub_client,
        audience=settings.pubsub_expected_audience,
        email=settings.pubsub_email,
    )


# Requests one contact may make (AddRecipient + three relational tables), plus an OAuth refresh.
_CALLS_PER_CONTACT = 5


def sync_policy_from_settings(settings: Settings) -> SyncPolicy:
    """docs/contract.md §9.2's settings and the destinations; the lease outlasts the slowest possible
    pass."""
    rounds = math.ceil(settings.acoustic_batch_limit / settings.acoustic_concurrency)
    lease_s = rounds * _CALLS_PER_CONTACT * settings.acoustic_timeout_s + 60
    return SyncPolicy(
        batch_limit=settings.acoustic_batch_limit,
        retry_limit=settings.acoustic_retry_limit,
        give_up_after=timedelta(seconds=settings.sync_give_up_after_seconds),
        destinations=settings.sync_destination_names,
        sync_enabled=settings.acoustic_sync_feature_flag,
        integration_enabled=settings.acoustic_integration_feature_flag,
        lease=timedelta(seconds=lease_s),
        erasure_retention=settings.erasure_address_retention,
    )


def braze_sync_policy(settings: Settings, policy: SyncPolicy) -> SyncPolicy:
    """The braze loop's policy: the shared `policy` with Braze's own batch (`CTMS_BRAZE_BATCH_LIMIT`,
    enough to fill several 75-user requests per pass) and a lease that outlasts its slowest pass: every
    request of a batch of erasures and updates, `CTMS_BRAZE_MAX_CONCURRENT` at a time, each taking its
    timeout after waiting out the rate limit."""
    batch = settings.braze_batch_limit
    requests = math.ceil(batch / TRACK_BATCH_SIZE) + math.ceil(batch / DELETE_BATCH_SIZE)
    rounds = math.ceil(requests / settings.braze_max_concurrent)
    lease_s = rounds * (settings.braze_timeout_s + settings.braze_max_rate_limit_wait_s) + 60
    return dataclasses.replace(policy, batch_limit=batch, lease=timedelta(seconds=lease_s))


def acoustic_request_slots(settings: Settings, engine: AsyncEngine | None) -> RequestSlots:
    """The deployment-wide limit of requests in flight against Acoustic (`CTMS_ACOUSTIC_MAX_CONCURRENT`),
    shared through the database; a lease outlasts the longest request (connect, write, read and pool
    waits each up to the timeout), so a killed worker's slots come back within it."""
    limit = settings.acoustic_max_concurrent
    if engine is None:
        return InMemoryRequestSlots(limit)
    lease = timedelta(seconds=4 * settings.acoustic_timeout_s + 30)
    return PostgresRequestSlots(engine, name="acoustic", limit=limit, lease=lease)


def acoustic_gateway_from_settings(
    settings: Settings, client: httpx.AsyncClient, slots: RequestSlots | None = None
) -> HttpxAcousticGateway:
    """The Acoustic gateway of `settings` over `client`; every credential and table id is required.
    Every request holds one of `slots` (none: no deployment-wide limit)."""
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
        slots=slots,
    )


def _acoustic_gateway_if_integrated(
    settings: Settings, client: httpx.AsyncClient, slots: RequestSlots
) -> HttpxAcousticGateway | None:
    """The gateway when the integration is on; None otherwise (the worker then only marks contacts
    synced, docs/acoustic.md)."""
    if not settings.acoustic_integration_feature_flag:
        return None
    return acoustic_gateway_from_settings(settings, client, slots)


def acoustic_http_client(concurrency: int) -> httpx.AsyncClient:
    """The HTTP client of the Acoustic requests: a connection for each of the `concurrency` requests in
    flight, and one more for the OAuth refresh (see `SlotTransport`)."""
    return httpx.AsyncClient(transport=SlotTransport(concurrency + 1))


def acoustic_requests_in_flight(settings: Settings) -> int:
    """The most Acoustic requests one worker process has in flight: each of its
    `CTMS_SYNC_BATCHES_IN_FLIGHT` batches sends `CTMS_ACOUSTIC_CONCURRENCY` at once, and the process
    never holds more than the deployment's `CTMS_ACOUSTIC_MAX_CONCURRENT` request slots."""
    return min(
        settings.acoustic_concurrency * settings.sync_batches_in_flight,
        settings.acoustic_max_concurrent,
    )


class _NotIntegrated:
    """The destination while CTMS_ACOUSTIC_INTEGRATION_FEATURE_FLAG is off: the sync consumes the
    contacts without delivering them (`SyncPolicy.integration_enabled`), so this is never called."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def deliver(self, deliveries: Sequence[Delivery]) -> DeliveryReport:
        raise RuntimeError(f"the {self.name} integration is disabled")


def _acoustic_destination(
    settings: Settings,
    gateway: HttpxAcousticGateway | None,
    configuration: Callable[[], Awaitable[AcousticConfiguration]],
    metrics: BackgroundMetrics,
) -> SyncDestination:
    if gateway is None:
        return _NotIntegrated("acoustic")
    return AcousticDestination(
        gateway,
        configuration,
        concurrency=settings.acoustic_concurrency,
        on_call=metrics.acoustic_call,
    )


def _braze_destination(
    settings: Settings, client: httpx.AsyncClient, engine: AsyncEngine | None
) -> SyncDestination:
    if engine is None:
        raise MissingConfigurationError("The braze sync destination needs CTMS_DB_URL")
    try:
        return braze_destination_for(
            client,
            engine,
            base_url=settings.braze_url,
            api_key=settings.braze_api_key,
            timeout=settings.braze_timeout_s,
            max_concurrent=settings.braze_max_concurrent,
            max_rate_limit_wait_s=settings.braze_max_rate_limit_wait_s,
        )
    except ValueError as error:
        raise MissingConfigurationError(str(error)) from None


async def _sync_services(
    settings: Settings,
    uow_factory: Callable[[], UnitOfWork],
    clock: Clock,
    policy: SyncPolicy,
    observer: BackgroundMetrics,
    uniform: Callable[[float, float], float],
    destinations: Mapping[str, Callable[[], Any]],
    policies: Mapping[str, SyncPolicy],
) -> list[SyncService]:
    """One `SyncService` per enabled destination (`CTMS_SYNC_DESTINATIONS`), in its order; only the
    enabled destinations are built (each needs its own credentials). A destination with its own entry
    in `policies` (its batch size and lease) gets it; the others share `policy`."""
    return [
        SyncService(
            uow_factory,
            await resolved(destinations[name]),
            clock,
            policies.get(name, policy),
            observer=observer,
            uniform=uniform,
        )
        for name in settings.sync_destination_names
    ]


def _other_destination_heartbeats(
    settings: Settings, service: AcousticAdminService, timeout: float
) -> list[AcousticHeartbeat]:
    """The heartbeat blocks of the enabled destinations other than v3.3's `acoustic`, each with the
    batch its loop claims."""
    batch_limits = {"braze": settings.braze_batch_limit}
    return [
        AcousticHeartbeat(service, settings, timeout, name, batch_limits.get(name))
        for name in settings.sync_destination_names
        if name != "acoustic"
    ]


async def _acoustic_http_client_resource(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with acoustic_http_client(acoustic_requests_in_flight(settings)) as client:
        yield client


async def _braze_http_client_resource(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with braze_http_client(settings.braze_max_concurrent) as client:
        yield client


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    id_generator = providers.Singleton(RandomIdGenerator)
    password_hasher = providers.Singleton(Argon2PasswordHasher)
    token_codec = providers.Singleton(JwtTokenCodec, providers.Callable(_secret_key, settings))

    engine = providers.Singleton(_engine_from_settings, settings)
    uow_factory = providers.Singleton(PostgresUnitOfWorkFactory, engine)
    database_health = providers.Singleton(PostgresDatabaseHealth, engine)

    erasure_salt = providers.Callable(_erasure_salt, settings)
    # One registry per process (docs/contract.md §11.5: per-process metrics).
    metrics = providers.Singleton(
        Metrics, providers.Callable(_pool_connections, engine.provider, settings)
    )

    contact_service = providers.Singleton(
        ContactService,
        uow_factory,
        clock,
        id_generator,
        erasure_salt=erasure_salt,
        erasure_retention=providers.Callable(_erasure_retention, settings),
        observer=metrics,
    )
    auth_service = providers.Singleton(
        AuthService,
        uow_factory,
        password_hasher,
        token_codec,
        clock,
        settings.provided.token_expiration,
        enforce_permissions=settings.provided.enforce_permissions,
        recheck_interval=providers.Callable(
            timedelta, seconds=settings.provided.token_cache_seconds
        ),
        throttle=providers.Callable(_token_throttle, settings),
    )
    # The rules waitlist `fields` are validated with, read at most once per interval (docs/waitlists.md).
    waitlist_rules = providers.Singleton(
        CachedWaitlistRules,
        uow_factory,
        clock,
        providers.Callable(timedelta, seconds=settings.provided.waitlist_rules_cache_seconds),
    )
    waitlist_rules_admin_service = providers.Singleton(WaitlistRulesAdminService, uow_factory)
    api_client_service = providers.Singleton(ApiClientService, uow_factory, password_hasher, clock)
    access_control_service = providers.Singleton(AccessControlService, uow_factory)
    erasure_audit_service = providers.Singleton(ErasureAuditService, uow_factory, erasure_salt)
    # `ctms acoustic resync --newsletter/--waitlist/--reset-retries` and `ctms acoustic dump`.
    acoustic_resync_service = providers.Singleton(
        AcousticResyncService,
        uow_factory,
        providers.Singleton(PostgresResyncSelection, engine),
        clock,
    )
    acoustic_admin_service = providers.Singleton(AcousticAdminService, uow_factory, clock)
    # `ctms braze resync`.
    braze_resync_service = providers.Singleton(
        BrazeResyncService,
        uow_factory,
        providers.Singleton(PostgresBrazeDigestStore, engine),
        clock,
    )

    # Stripe ingestion (docs/contract.md §8.1) and the Pub/Sub push endpoint (docs/contract.md §8.2); the JWKS client is built on first use.
    stripe_ingest_service = providers.Singleton(
        StripeIngestService,
        uow_factory,
        clock,
        providers.Singleton(StripeContactToucher, clock),
        contacts_queued=metrics.provided.count_pending_acoustic_sync,
    )
    pubsub_http_client = providers.Singleton(httpx.AsyncClient)
    jwks_fetcher = providers.Singleton(
        JwksFetcher, settings.provided.pubsub_jwks_url, pubsub_http_client
    )
    push_token_verifier = providers.Singleton(GoogleOidcVerifier, jwks_fetcher)
    pubsub_ingest_service = providers.Singleton(
        PubSubIngestService,
        stripe_ingest_service,
        push_token_verifier,
        providers.Callable(_push_settings, settings),
    )

    # What the HTTP handlers receive (`ctms_entrypoints.http.dependencies`), one bundle per handler
    # parameter.
    contacts_api = providers.Singleton(
        ContactsApi,
        contacts=contact_service,
        auth=auth_service,
        server_prefix=settings.provided.server_prefix,
        waitlist_rules=waitlist_rules,
    )
    heartbeat_timeout = providers.Callable(_heartbeat_timeout, settings)
    database_heartbeat = providers.Singleton(
        DatabaseHeartbeat,
        database_health,
        heartbeat_timeout,
        metrics,
        providers.Singleton(AcousticHeartbeat, acoustic_admin_service, settings, heartbeat_timeout),
        providers.Callable(
            _other_destination_heartbeats, settings, acoustic_admin_service, heartbeat_timeout
        ),
    )
    stripe_api = providers.Singleton(
        StripeApi,
        auth=auth_service,
        ingest=stripe_ingest_service,
        pubsub=pubsub_ingest_service,
    )

    # The sync worker (`ctms sync`, docs/acoustic.md). Its HTTP client is the container's only async Resource:
    # opened on first use, closed by `dispose(container)`.
    acoustic_http_client = providers.Resource(_acoustic_http_client_resource, settings)
    acoustic_request_slots = providers.Singleton(acoustic_request_slots, settings, engine)
    acoustic_gateway = providers.Singleton(
        _acoustic_gateway_if_integrated, settings, acoustic_http_client, acoustic_request_slots
    )
    sync_policy = providers.Callable(sync_policy_from_settings, settings)
    worker_metrics = providers.Singleton(BackgroundMetrics)
    # Draws the retry backoff's jitter; tests fix it.
    jitter = providers.Object(random.uniform)
    # One provider per destination `CTMS_SYNC_DESTINATIONS` may name; adding a destination adds one here.
    acoustic_destination = providers.Singleton(
        _acoustic_destination,
        settings,
        acoustic_gateway,
        acoustic_admin_service.provided.configuration,
        worker_metrics,
    )
    braze_http_client = providers.Resource(_braze_http_client_resource, settings)
    braze_destination = providers.Singleton(_braze_destination, settings, braze_http_client, engine)
    sync_services = providers.Singleton(
        _sync_services,
        settings,
        uow_factory,
        clock,
        sync_policy,
        worker_metrics,
        jitter,
        providers.Dict(acoustic=acoustic_destination.provider, braze=braze_destination.provider),
        providers.Dict(braze=providers.Callable(braze_sync_policy, settings, sync_policy)),
    )
    sync_worker = providers.Singleton(
        SyncWorker,
        sync_services,
        worker_metrics,
        loop_min_secs=settings.provided.acoustic_loop_min_secs,
        healthcheck_path=settings.provided.background_healthcheck_path,
        pushgateway_url=settings.provided.prometheus_pushgateway_url,
        batches_in_flight=settings.provided.sync_batches_in_flight,
    )


def memory_storage(store: InMemoryStore | None = None) -> dict[str, Any]:
    """Overrides that put the in-memory adapters behind every storage port."""
    store = store or InMemoryStore()
    return {
        "uow_factory": lambda: InMemoryUnitOfWork(store),
        "database_health": InMemoryDatabaseHealth(store),
        "engine": None,
    }


def build_container(settings: Settings, **overrides: Any) -> Container:
    """A container for `settings`; each override replaces the provider of that name by a fixed value."""
    container = Container(settings=settings)
    for name, value in overrides.items():
        getattr(container, name).override(providers.Object(value))
    return container


async def release_request_slots(container: Container) -> None:
    """Give back the Acoustic request slots this process keeps idle, and wait for the give-backs under
    way: a sync worker does it on its way out. Otherwise the slots stay taken until their lease ends, and
    a give-back still connecting when the event loop closes leaves its connection open."""
    slots = container.acoustic_request_slots()
    if isinstance(slots, PostgresRequestSlots):
        await slots.close()


async def dispose(container: Container) -> None:
    """Release what `container` opened: its async Resources (the Acoustic and Braze HTTP clients) and the
    database engine's connections. Safe on a container that opened nothing."""
    await resolved(container.shutdown_resources)
    engine = container.engine()
    if engine is not None:
        await engine.dispose()
