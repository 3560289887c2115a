"""Platform endpoints (docs/contract.md §10): version, heartbeats, the crash test, and the documentation pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar import HttpMethod, Request, get, route
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Redirect
from litestar.response.base import ASGIResponse

from ctms_core.domain.permissions import ADMIN
from ctms_core.services.auth import AuthService
from ctms_entrypoints.http.dependencies import DatabaseHeartbeat
from ctms_entrypoints.http.openapi import PLATFORM, REDOC, SWAGGER_UI, responses
from ctms_entrypoints.http.pipeline import pipeline
from ctms_entrypoints.http.responses import (
    HeartbeatResponse,
    JsonContent,
    LbHeartbeatResponse,
    encode_json,
    raw_json_response,
)
from ctms_entrypoints.observability.metrics import Metrics

AnyRequest = Request[Any, Any, Any]

_LB_HEARTBEAT = LbHeartbeatResponse(status="OK")
_SWAGGER_OAUTH2_REDIRECT = (
    Path(__file__).parent.parent / "static" / "swagger-ui" / "oauth2-redirect.html"
)


def per_method(name: str) -> Callable[..., str]:
    """Operation ids for a handler that serves GET and HEAD (ids must be unique)."""

    def operation_id(handler: Any, method: HttpMethod | str, path: Any) -> str:
        return f"{name}_{str(method).lower()}" if str(method).upper() != "GET" else name

    return operation_id


def _json_or_head(request: AnyRequest, body: JsonContent, status_code: int = 200) -> ASGIResponse:
    """The JSON body for GET; the same status and headers without a body for HEAD."""
    content = b"" if request.method == HttpMethod.HEAD else encode_json(body)
    return raw_json_response(content, status_code=status_code)


@get("/", include_in_schema=False, status_code=307)
async def root() -> Redirect:
    return Redirect(path="./docs", status_code=307)


@get(
    "/__version__",
    tags=PLATFORM,
    summary="The deployed version",
    operation_id="version",
    responses=responses({200: (dict[str, Any], "The content of version.json")}),
)
async def version(version_document: NamedDependency[bytes]) -> ASGIResponse:
    return raw_json_response(version_document)


@route(
    "/__heartbeat__",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    tags=PLATFORM,
    summary="Health of the service and its database",
    operation_id=per_method("heartbeat"),
    responses=responses(
        {
            200: (HeartbeatResponse, "Healthy"),
            503: (
                HeartbeatResponse,
                "The database cannot be reached, or the sync backlog is too large",
            ),
        }
    ),
)
async def heartbeat(
    request: AnyRequest, database_heartbeat: NamedDependency[DatabaseHeartbeat]
) -> ASGIResponse:
    """The database round trip in milliseconds and the Acoustic sync backlog; 503 when the database
    cannot be reached, the backlog cannot be counted or exceeds its configured limits."""
    database = await database_heartbeat.check()
    healthy = (
        database.up
        and database.acoustic.get("success", True) is True
        and (database.braze is None or database.braze.get("success", True) is True)
    )
    status_code = 200 if healthy else 503
    return _json_or_head(request, HeartbeatResponse(database), status_code)


@route(
    "/__lbheartbeat__",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    tags=PLATFORM,
    summary="Liveness for the load balancer (no dependencies)",
    operation_id=per_method("lbheartbeat"),
    responses=responses({200: (LbHeartbeatResponse, "Alive")}),
)
async def lbheartbeat(request: AnyRequest) -> ASGIResponse:
    return _json_or_head(request, _LB_HEARTBEAT)


@get(
    "/metrics",
    tags=PLATFORM,
    summary="Prometheus metrics of this process",
    operation_id="metrics",
    responses={
        200: ResponseSpec(
            str,
            description="Prometheus text exposition format 0.0.4",
            media_type=MediaType.TEXT,
            generate_examples=False,
        )
    },
)
async def metrics(metrics: NamedDependency[Metrics]) -> ASGIResponse:
    body, content_type = metrics.render()
    return ASGIResponse(body=body, headers={"content-type": content_type})


CRASH = (ADMIN,)


@get("/__crash__", include_in_schema=False)
@pipeline(CRASH, auth="auth")
async def crash(auth: NamedDependency[AuthService]) -> None:
    """Raise an error on purpose, to check error reporting (authenticated clients only)."""
    raise RuntimeError("Test exception handling")


@get("/docs", include_in_schema=False, media_type=MediaType.HTML)
async def swagger_ui(request: AnyRequest) -> bytes:
    return SWAGGER_UI.render(request, request.app.openapi_schema.to_schema())


@get(
    "/docs/oauth2-redirect", include_in_schema=False, media_type=MediaType.HTML, sync_to_thread=True
)
def swagger_ui_oauth2_redirect() -> bytes:
    return _SWAGGER_OAUTH2_REDIRECT.read_bytes()


@get("/redoc", include_in_schema=False, media_type=MediaType.HTML)
async def redoc(request: AnyRequest) -> bytes:
    return REDOC.render(request, request.app.openapi_schema.to_schema())


PLATFORM_ROUTES = [
    root,
    version,
    heartbeat,
    lbheartbeat,
    metrics,
    crash,
    swagger_ui,
    swagger_ui_oauth2_redirect,
    redoc,
]
