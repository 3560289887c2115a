"""ASGI entry point for server processes: `ctms_entrypoints.asgi:create_app_from_environment`.

`ctms serve` resolves the database and secret key once, exports them, and starts the ASGI server with this
factory, so every worker process builds its own container (and connection pool) from the environment.
"""

from __future__ import annotations

from litestar import Litestar

from ctms_entrypoints.container import build_container
from ctms_entrypoints.http import create_app
from ctms_entrypoints.settings import Settings


def create_app_from_environment() -> Litestar:
    return create_app(build_container(Settings.from_env()))
