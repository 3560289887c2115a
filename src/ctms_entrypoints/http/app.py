"""`create_app(container)`: the Litestar application of the CTMS HTTP API."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar.static_files import create_static_files_router
from litestar.types import Scope

from ctms_entrypoints.http.context import log_fields
from ctms_entrypoints.http.dependencies import AppContainer, dependencies
from ctms_entrypoints.http.errors import AnyRequest, exception_handlers
from ctms_entrypoints.http.openapi import STATIC_PATH, openapi_config, requires_api_bearer
from ctms_entrypoints.http.read_deadline import read_body_by_deadline
from ctms_entrypoints.http.routes.acoustic import ACOUSTIC_ROUTES
from ctms_entrypoints.http.routes.contacts import CONTACT_ROUTES
from ctms_entrypoints.http.routes.platform import PLATFORM_ROUTES
from ctms_entrypoints.http.routes.stripe import STRIPE_ROUTES
from ctms_entrypoints.http.routes.token import token
from ctms_entrypoints.http.slashes import redirect_trailing_slash
from ctms_entrypoints.observability.access_log import AccessLogMiddleware, log_context_in
from ctms_entrypoints.observability.metrics import Metrics, RouteMetricsSpec
from ctms_entrypoints.settings import Settings

STATIC_DIRECTORY = Path(__file__).parent / "static"
# src/ctms_entrypoints/http/app.py → the repository (or application) root.
_APPLICATION_ROOT = Path(__file__).resolve().parents[3]


def load_version_document(settings: Settings) -> bytes:
    """`version.json` as served by `/__version__`: `settings.version_file`, else `version.json` in the
    working directory or at the application root; `{}` when there is none (docs/contract.md §10)."""
    if settings.version_file is not None:
        candidates = [settings.version_file]
    else:
        candidates = [Path.cwd() / "version.json", _APPLICATION_ROOT / "version.json"]
    for path in candidates:
        try:
            document = msgspec.json.decode(path.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, msgspec.DecodeError):
            break
        return msgspec.json.encode(document)
    return b"{}"


def _api_version(version_document: bytes) -> str:
    document = msgspec.json.decode(version_document)
    if isinstance(document, dict) and isinstance(document.get("version"), str):
        return str(document["version"])
    try:
        return metadata.version("ctms")
    except metadata.PackageNotFoundError:
        return "0.0.0"


_PARAMETER_TYPE = re.compile(r"\{(\w+):[^}]*\}")


def _template_of(handler: Any) -> str:
    return _PARAMETER_TYPE.sub(r"{\1}", min(handler.paths))


def _route_metric_specs(app: Litestar) -> list[RouteMetricsSpec]:
    """Every handler and method with the status codes its OpenAPI operation documents (200 for routes
    outside the document, 307 for `/`), and whether it needs a bearer token (docs/contract.md §11.5 pre-initialisation)."""
    documented = app.openapi_schema.paths or {}
    specs: list[RouteMetricsSpec] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            template = _template_of(handler)
            if template.startswith(STATIC_PATH):
                continue
            path_item = documented.get(template)
            for method in sorted(getattr(handler, "http_methods", ())):
                if method == "OPTIONS":
                    continue
                operation = getattr(path_item, method.lower(), None) if path_item else None
                if operation is not None and operation.responses:
                    codes = sorted(int(code) for code in operation.responses)
                else:
                    codes = [307 if template == "/" else 200]
                secured = template == "/__crash__" or (
                    operation is not None and requires_api_bearer(operation.security)
                )
                specs.append(RouteMetricsSpec(method, template, tuple(codes), secured))
    return specs


def _path_template_recorder() -> Callable[[AnyRequest], Awaitable[None]]:
    """A before-request hook that records the matched handler's own path template.

    Litestar merges `/ctms/{email_id}` and `/ctms/{primary_email}` into one route and reports a single
    template for both, so logs and metrics take the template from the handler instead (docs/contract.md §11.5 labels).
    """
    templates: dict[int, str] = {}

    # Async on purpose: Litestar runs a sync hook in a worker thread, a hop per request (measured: a
    # quarter of the CPU of a cheap request).
    async def record(request: AnyRequest) -> None:
        handler: Any = request.scope.get("route_handler")
        if handler is None:
            return
        template = templates.get(id(handler))
        if template is None:
            template = templates[id(handler)] = _template_of(handler)
        log_fields(request)["path_template"] = template

    return record


async def _remember_exception(exception: Exception, scope: Scope) -> None:
    """After-exception hook: an exception the framework turns into a 5xx response itself makes the
    access-log record ERROR, with its traceback. (Async: Litestar runs a sync hook in a worker thread.)"""
    log_context_in(scope["state"])["exception"] = exception


def create_app(container: AppContainer) -> Litestar:
    """The HTTP API, wired to `container`'s services, wrapped in the access log and request metrics."""
    settings: Settings = container.settings()
    version_document = load_version_document(settings)
    metrics: Metrics = container.metrics()

    async def preinitialise_metrics(app: Litestar) -> None:
        try:
            clients = await container.api_client_service().list()
        except Exception:  # a database down at start-up must not stop the API from starting
            clients = []
        metrics.preinitialise(
            _route_metric_specs(app), [client.client_id for client in clients if client.enabled]
        )

    app = Litestar(
        route_handlers=[
            *PLATFORM_ROUTES,
            token,
            *CONTACT_ROUTES,
            *STRIPE_ROUTES,
            *ACOUSTIC_ROUTES,
            create_static_files_router(path=STATIC_PATH, directories=[STATIC_DIRECTORY]),
        ],
        dependencies=dependencies(container, version_document),
        exception_handlers=exception_handlers(),
        middleware=[
            redirect_trailing_slash,
            read_body_by_deadline(settings.request_read_timeout_seconds),
        ],
        openapi_config=openapi_config(_api_version(version_document)),
        request_max_body_size=settings.max_body_bytes,
        # Logging (access log, MozLog) is configured by the entrypoint, not by Litestar.
        logging_config=None,
        after_exception=[_remember_exception],
        before_request=_path_template_recorder(),
        on_startup=[preinitialise_metrics],
    )
    # Outside Litestar's router, so requests for unknown paths get their access-log record too.
    app.asgi_handler = cast(Any, AccessLogMiddleware(cast(Any, app.asgi_handler), metrics=metrics))
    return app
