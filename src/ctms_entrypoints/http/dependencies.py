"""What handlers receive as Litestar dependencies: the bundles the composition root
(`ctms_entrypoints.container`) builds, by the parameter name handlers declare.

This module declares the bundles' classes and which container provider serves each handler parameter;
the container builds them. Each value is resolved once per application (`use_cache`), so bundles stay
singletons owned by the container and tests swap them by overriding providers before `create_app`. The
HTTP package never imports the container module (that would be an import cycle): `create_app` takes any
object with the providers of `AppContainer`.

Every handler asks for one dependency at most: Litestar resolves several dependencies of one handler
concurrently in a task group, which costs more per request than the whole of a bearer-authenticated
`GET /ctms/{email_id}` otherwise does (the hot path, docs/contract.md §16.1). So the contacts handlers share one
`ContactsApi`. Values are plain objects: Litestar passes dependencies through its signature model, which
cannot check `Protocol` types and would rebuild dataclasses on every request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from litestar.di import Provide

from ctms_core.ports.health import DatabaseHealth
from ctms_core.services.api_clients import ApiClientService
from ctms_core.services.auth import AuthService
from ctms_core.services.contacts import ContactService
from ctms_core.services.waitlist_rules import CachedWaitlistRules
from ctms_entrypoints.awaitables import resolved
from ctms_entrypoints.http.acoustic import AcousticHeartbeat
from ctms_entrypoints.http.responses import DatabaseHealthReport
from ctms_entrypoints.observability.metrics import Metrics
from ctms_entrypoints.settings import Settings


class ContactsApi:
    """What the contacts handlers use: the contact use cases, bearer authentication, the waitlist field
    rules the bodies are validated with, and the public base URL (`/updates` `next` links)."""

    __slots__ = ("auth", "contacts", "server_prefix", "waitlist_rules")

    def __init__(
        self,
        contacts: ContactService,
        auth: AuthService,
        server_prefix: str,
        waitlist_rules: CachedWaitlistRules,
    ) -> None:
        self.contacts = contacts
        self.auth = auth
        self.server_prefix = server_prefix
        self.waitlist_rules = waitlist_rules


class DatabaseHeartbeat:
    """The database part of `/__heartbeat__`: one ping, bounded by `timeout` seconds, timed in whole
    milliseconds (docs/contract.md §10). A healthy check also refreshes the `ctms_contacts_total` gauge."""

    def __init__(
        self,
        health: DatabaseHealth,
        timeout: float,
        metrics: Metrics,
        acoustic: AcousticHeartbeat | None = None,
        other_destinations: Sequence[AcousticHeartbeat] = (),
    ) -> None:
        self._health = health
        self._timeout = timeout
        self._metrics = metrics
        self._acoustic = acoustic
        self._other_destinations = tuple(other_destinations)

    async def check(self) -> DatabaseHealthReport:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                await self._health.ping()
        except Exception:  # any failure, the timeout included, means "down"
            up = False
        else:
            up = True
        time_ms = round((time.perf_counter() - started) * 1000)
        if up:
            try:
                async with asyncio.timeout(self._timeout):
                    self._metrics.set_contacts_total(await self._health.estimate_contact_count())
            except Exception:  # noqa: S110 - the gauge is best effort; the ping decided health
                pass
        # The Acoustic backlog check (docs/contract.md §10) only when the database answered.
        acoustic = await self._acoustic.check() if up and self._acoustic is not None else {}
        # The other enabled destinations' blocks (`braze`), beside v3.3's `acoustic` one.
        others = {
            heartbeat.destination: await heartbeat.check() if up else {}
            for heartbeat in self._other_destinations
        }
        return DatabaseHealthReport(
            up=up, time_ms=time_ms, acoustic=acoustic, braze=others.get("braze")
        )


def heartbeat_timeout(settings: Settings) -> float:
    """How long the heartbeat waits for the database before reporting it down: the pool timeout, at
    most the statement timeout (the bound of any database call), so it answers even when the database
    hangs (docs/configuration.md, "Database timeouts")."""
    return min(
        max(float(settings.db_pool_timeout_in_seconds), 1.0), settings.db_statement_timeout_seconds
    )


# A container provider: called, it gives the value, or an awaitable of it when it depends on an async
# Resource.
Provider = Callable[[], Any | Awaitable[Any]]


class AppContainer(Protocol):
    """The providers `create_app` takes from the composition root (`ctms_entrypoints.container`)."""

    @property
    def settings(self) -> Callable[[], Settings]: ...
    @property
    def metrics(self) -> Callable[[], Metrics]: ...
    @property
    def api_client_service(self) -> Callable[[], ApiClientService]: ...
    @property
    def contacts_api(self) -> Provider: ...
    @property
    def auth_service(self) -> Provider: ...
    @property
    def database_heartbeat(self) -> Provider: ...
    @property
    def acoustic_admin_service(self) -> Provider: ...
    @property
    def stripe_api(self) -> Provider: ...


def dependencies(container: AppContainer, version_document: bytes) -> dict[str, Provide]:
    """The application-wide dependencies, by the parameter name handlers declare: each one a container
    provider."""
    served: dict[str, Provider] = {
        "contacts_api": container.contacts_api,
        "auth": container.auth_service,
        "database_heartbeat": container.database_heartbeat,
        "metrics": container.metrics,
        "acoustic_admin": container.acoustic_admin_service,
        "stripe_api": container.stripe_api,
    }
    return {
        **{name: Provide(_resolver(provider), use_cache=True) for name, provider in served.items()},
        "version_document": Provide(lambda: version_document, use_cache=True, sync_to_thread=False),
    }


def _resolver(provider: Provider) -> Callable[[], Awaitable[Any]]:
    """An async Litestar dependency resolving `provider` (async, so Litestar runs it on the loop)."""

    async def resolve() -> Any:
        return await resolved(provider)

    return resolve
