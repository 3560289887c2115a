"""Process-wide observability set-up, done once by each entry point before it builds the app."""

from __future__ import annotations

from ctms_adapters.logging import configure_logging
from ctms_entrypoints.observability.sentry import init_sentry, release_from_version_document
from ctms_entrypoints.settings import Settings


def set_up_observability(settings: Settings, version_document: bytes) -> None:
    """MozLog (or console) logging for every logger, then Sentry when `SENTRY_DSN` is set."""
    configure_logging(
        use_mozlog=settings.use_mozlog,
        level=settings.logging_level,
        log_sqlalchemy=settings.log_sqlalchemy,
    )
    if settings.sentry_dsn:
        init_sentry(
            settings.sentry_dsn,
            debug=settings.sentry_debug,
            release=release_from_version_document(version_document),
        )
