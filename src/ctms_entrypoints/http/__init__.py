"""The HTTP API (Litestar): `create_app(container)` builds it; nothing is built at import time."""

from ctms_entrypoints.http.app import create_app

__all__ = ["create_app"]
