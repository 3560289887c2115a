"""What handlers receive as Litestar dependencies, built from the container.

Each value is resolved once per application (`use_cache`) from container providers, so services stay
singletons owned by the container and tests swap them by overriding providers before `create_app`.

Every handler asks for one dependency at most: Litestar resolves several dependencies of one handler
concurrently in a task group, which costs more per request than the whole of a bearer-authenticated
`GET /ctms/{email_id}` otherwise does (the hot path, SPEC §9). So the contacts handlers share one
`ContactsApi`. Values are plain objects: Litestar passes dependencies through its signature model, which
cannot check `Protocol` types and would rebuild dataclasses on every request.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

from litestar.di import Provide

from ctms_core.ports.health import DatabaseHealth
from ctms_core.services.acoustic_admin import AcousticAdminService
from ctms_core.services.auth import AuthService
from ctms_core.services.contacts import ContactService
from ctms_core.services.waitlist_rules import CachedWaitlistRules
from ctms_entrypoints.container import Container
from ctms_entrypoints.http.acoustic import AcousticHeartbeat
from ctms_entrypoints.http.responses import DatabaseHealthReport
from ctms_entrypoints.observability.metrics import Metrics
from ctms_entrypoints.settings import Settings


class ContactsApi:
    """What the contacts handlers use: the contact use cases, bearer authentication, the waitlist field
    rules the bodies are validated with, and the public base URL (`/updates` `next` links)."""

    __slots__ = ("auth", "contacts", "metrics", "server_prefix", "waitlist_rules")

    def __init__(
        self,
        contacts: ContactService,
        auth: AuthService,
        server_prefix: str,
        metrics: Metrics,
        waitlist_rules: CachedWaitlistRules,
    ) -> None:
        self.contacts = contacts
        self.auth = auth
        self.server_prefix = server_prefix
        self.metrics = metrics
        self.waitlist_rules = waitlist_rules


class DatabaseHeartbeat:
    """The database part of `/__heartbeat__`: one ping, bounded by `timeout` seconds, timed in whole
    milliseconds (SPEC §6 item 25). A healthy check also refreshes the `ctms_contacts_total` gauge."""

    def __init__(
        self,
        health: DatabaseHealth,
        timeout: float,
        metrics: Metrics,
        acoustic: AcousticHeartbeat | None = None,
    ) -> None:
        self._health = health
        self._timeout = timeout
        self._metrics = metrics
        self._acoustic = acoustic

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
        # The Acoustic backlog check (R§2.14 step 2) only when the database answered.
        acoustic = await self._acoustic.check() if up and self._acoustic is not None else {}
        return DatabaseHealthReport(up=up, time_ms=time_ms, acoustic=acoustic)


def heartbeat_timeout(settings: Settings) -> float:
    """How long the heartbeat waits for the database before reporting it down: the pool timeout, at
    most the statement timeout (the bound of any database call), so it answers even when the database
    hangs (docs/configuration.md, "Database timeouts")."""
    return min(
        max(float(settings.db_pool_timeout_in_seconds), 1.0), settings.db_statement_timeout_seconds
    )


async def _resolved(provider: Callable[[], Any]) -> Any:
    """A provider's value, awaited when the provider is async (an async Resource or a test fake)."""
    value = provider()
    return await value if inspect.isawaitable(value) else value


def dependencies(
    container: Container, settings: Settings, version_document: bytes
) -> dict[str, Provide]:
    """The application-wide dependencies, by the parameter name handlers declare."""

    async def contacts_api() -> ContactsApi:
        return ContactsApi(
            contacts=await _resolved(container.contact_service),
            auth=await _resolved(container.auth_service),
            server_prefix=settings.server_prefix,
            metrics=await _resolved(container.metrics),
            waitlist_rules=await _resolved(container.waitlist_rules),
        )

    async def auth() -> AuthService:
        service: AuthService = await _resolved(container.auth_service)
        return service

    async def database_heartbeat() -> DatabaseHeartbeat:
        health = await _resolved(container.database_health)
        timeout = heartbeat_timeout(settings)
        acoustic = AcousticHeartbeat(
            await _resolved(container.acoustic_admin_service), settings, timeout
        )
        return DatabaseHeartbeat(health, timeout, await _resolved(container.metrics), acoustic)

    async def acoustic_admin() -> AcousticAdminService:
        service: AcousticAdminService = await _resolved(container.acoustic_admin_service)
        return service

    async def metrics() -> Metrics:
        registry: Metrics = await _resolved(container.metrics)
        return registry

    return {
        "contacts_api": Provide(contacts_api, use_cache=True),
        "auth": Provide(auth, use_cache=True),
        "database_heartbeat": Provide(database_heartbeat, use_cache=True),
        "metrics": Provide(metrics, use_cache=True),
        "acoustic_admin": Provide(acoustic_admin, use_cache=True),
        "version_document": Provide(lambda: version_document, use_cache=True, sync_to_thread=False),
    }
