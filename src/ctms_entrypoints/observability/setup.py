"""Process-wide observability set-up, done once by each entry point before it builds the app."""

from __future__ import annotations

import msgspec

from ctms_adapters.logging import configure_logging
from ctms_entrypoints.observability.sentry import init_sentry
from ctms_entrypoints.settings import Settings


def release_of(version_document: bytes) -> str | None:
    """The Sentry release: `version` of version.json, else its `commit`."""
    try:
        document = msgspec.json.decode(version_document)
    except msgspec.DecodeError:
        return None
    if not isinstance(document, dict):
        return None
    for key in ("version", "commit"):
        if isinstance(document.get(key), str) and document[key]:
            return str(document[key])
    return None


def set_up_observability(settings: Settings, version_document: bytes) -> None:
    """MozLog (or console) logging for every logger, then Sentry when `SENTRY_DSN` is set."""
    configure_logging(
        use_mozlog=settings.use_mozlog,
        level=settings.logging_level,
        log_sqlalchemy=settings.log_sqlalchemy,
    )
    if settings.sentry_dsn:
        init_sentry(
            settings.sentry_dsn, debug=settings.sentry_debug, release=release_of(version_document)
        )
