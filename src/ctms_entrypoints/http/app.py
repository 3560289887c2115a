"""`create_app(container)`: the Litestar application of the CTMS HTTP API."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import msgspec
from litestar import Litestar
from litestar.static_files import create_static_files_router

from ctms_entrypoints.container import Container
from ctms_entrypoints.http.dependencies import dependencies
from ctms_entrypoints.http.errors import exception_handlers
from ctms_entrypoints.http.openapi import STATIC_PATH, openapi_config
from ctms_entrypoints.http.routes.contacts import CONTACT_ROUTES
from ctms_entrypoints.http.routes.platform import PLATFORM_ROUTES
from ctms_entrypoints.http.routes.token import token
from ctms_entrypoints.http.slashes import redirect_trailing_slash
from ctms_entrypoints.settings import Settings

STATIC_DIRECTORY = Path(__file__).parent / "static"
# src/ctms_entrypoints/http/app.py → the repository (or application) root.
_APPLICATION_ROOT = Path(__file__).resolve().parents[3]


def load_version_document(settings: Settings) -> bytes:
    """`version.json` as served by `/__version__`: `settings.version_file`, else `version.json` in the
    working directory or at the application root; `{}` when there is none (R§2.14)."""
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


def create_app(container: Container) -> Litestar:
    """The HTTP API, wired to `container`'s services."""
    settings: Settings = container.settings()
    version_document = load_version_document(settings)
    return Litestar(
        route_handlers=[
            *PLATFORM_ROUTES,
            token,
            *CONTACT_ROUTES,
            create_static_files_router(path=STATIC_PATH, directories=[STATIC_DIRECTORY]),
        ],
        dependencies=dependencies(container, settings, version_document),
        exception_handlers=exception_handlers(),
        middleware=[redirect_trailing_slash],
        openapi_config=openapi_config(_api_version(version_document)),
        request_max_body_size=settings.max_body_bytes,
        # Logging (access log, MozLog) is configured by the entrypoint, not by Litestar.
        logging_config=None,
    )
