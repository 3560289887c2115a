"""ASGI entry point for server processes: `ctms_entrypoints.asgi:create_app_from_environment`.

`ctms serve` resolves the database and secret key once, exports them, and starts the ASGI server with this
factory, so every worker process sets up its logging and Sentry and builds its own container (and
connection pool) from the environment.
"""

from __future__ import annotations

from litestar import Litestar

from ctms_entrypoints.container import build_container
from ctms_entrypoints.http import create_app
from ctms_entrypoints.http.app import load_version_document
from ctms_entrypoints.observability.setup import set_up_observability
from ctms_entrypoints.settings import Settings


def create_app_from_environment() -> Litestar:
    settings = Settings.from_env()
    set_up_observability(settings, load_version_document(settings))
    return create_app(build_container(settings))
