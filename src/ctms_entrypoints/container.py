"""The composition root: the only module that knows which adapter serves which port.

Providers are plain Singletons (no async Resources): building the container connects to nothing, and the
owner of the container disposes the engine (`await container.engine().dispose()`) when it stops.
Tests and embedders swap the storage with `build_container(settings, **memory_storage())`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from dependency_injector import containers, providers

from ctms_adapters.memory import InMemoryDatabaseHealth, InMemoryStore, InMemoryUnitOfWork
from ctms_adapters.postgres import PostgresDatabaseHealth, PostgresUnitOfWorkFactory, create_engine
from ctms_adapters.pubsub import GoogleOidcVerifier, JwksFetcher
from ctms_adapters.security import Argon2PasswordHasher, JwtTokenCodec
from ctms_adapters.system import RandomIdGenerator, SystemClock
from ctms_core.domain.erasure import derive_erasure_salt
from ctms_core.domain.throttling import FailureThrottle, ThrottlePolicy
from ctms_core.services.access_control import AccessControlService
from ctms_core.services.acoustic_admin import AcousticAdminService
from ctms_core.services.api_clients import ApiClientService
from ctms_core.services.auth import AuthService
from ctms_core.services.contacts import ContactService
from ctms_core.services.erasures import ErasureAuditService
from ctms_core.services.pubsub import PubSubIngestService, PushSettings
from ctms_core.services.stripe import StripeIngestService
from ctms_core.services.stripe_contacts import StripeContactToucher
from ctms_core.services.waitlist_rules import CachedWaitlistRules, WaitlistRulesAdminService
from ctms_entrypoints.observability.metrics import Metrics
from ctms_entrypoints.settings import Settings


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
    # One registry per process (R§8.1: per-process metrics).
    metrics = providers.Singleton(Metrics)

    contact_service = providers.Singleton(
        ContactService,
        uow_factory,
        clock,
        id_generator,
        erasure_salt=erasure_salt,
        erasure_retention=providers.Callable(_erasure_retention, settings),
        erasure_addresses_dropped=metrics.provided.count_erasure_addresses_dropped,
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
    acoustic_admin_service = providers.Singleton(
        AcousticAdminService,
        uow_factory,
        clock,
        retry_limit=settings.provided.acoustic_retry_limit,
    )

    # Stripe ingestion (R§2.12) and the Pub/Sub push endpoint (R§2.13); the JWKS client is built on first use.
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
