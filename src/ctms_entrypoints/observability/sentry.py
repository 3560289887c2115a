"""Sentry for the API and worker processes (docs/contract.md §11.4): unhandled errors only, no client errors,
no local variables, and no secrets or e-mail addresses in what leaves the process."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
from sentry_sdk.transport import Transport
from sentry_sdk.types import Event, Hint

from ctms_core.domain.errors import CoreError

__all__ = [
    "FILTERED",
    "IGNORED_LOGGERS",
    "before_send",
    "init_sentry",
    "is_expected_error",
    "release_from_version_document",
    "release_from_version_file",
    "scrub",
]

FILTERED = "[Filtered]"
# The access log carries the request (and its 500s, already reported by the framework integration);
# uvicorn re-logs what the app raised.
IGNORED_LOGGERS = ("ctms.web", "uvicorn.error")

_SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "cookies",
        "set-cookie",
        "x-api-key",
        "client_secret",
        "secret",
        "secret_key",
        "password",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "pubsub_client",
        "primary_email",
        "fxa_primary_email",
        "email",
    }
)
_SCRUBBED_TEXT = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), rf"\1 {FILTERED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)?"), FILTERED),
    (re.compile(r"\bsecret_[A-Za-z0-9_\-]+"), FILTERED),
    (
        re.compile(r"(?i)\b(pubsub_client|client_secret|password|token)=[^&\s'\"]*"),
        rf"\1={FILTERED}",
    ),
    (
        re.compile(
            r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+(?:@|%40)"
            r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
        ),
        FILTERED,
    ),
)
_MAX_DEPTH = 32


def _scrub_text(text: str) -> str:
    for pattern, replacement in _SCRUBBED_TEXT:
        text = pattern.sub(replacement, text)
    return text


def scrub(value: Any, _depth: int = 0) -> Any:
    """A copy of `value` with credentials, tokens and e-mail addresses replaced by `[Filtered]`, at any
    depth: values of sensitive keys (headers such as Authorization and Cookie, secrets, tokens, e-mail
    query parameters) whole, and matching fragments of every other string."""
    if isinstance(value, str):
        return _scrub_text(value)
    if _depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            key: (
                FILTERED
                if isinstance(key, str)
                and key.lower() in _SENSITIVE_KEYS
                and value[key] is not None
                else scrub(value[key], _depth + 1)
            )
            for key in value
        }
    if isinstance(value, list | tuple):
        items = [scrub(item, _depth + 1) for item in value]
        # Header lists arrive as [name, value] pairs.
        if len(items) == 2 and isinstance(items[0], str) and items[0].lower() in _SENSITIVE_KEYS:
            items[1] = FILTERED
        return items
    return value


def is_expected_error(exception: BaseException) -> bool:
    """Whether `exception` is an outcome clients cause: a core error, or an HTTP exception below 500."""
    if isinstance(exception, CoreError):
        return True
    status_code = getattr(exception, "status_code", None)
    return isinstance(status_code, int) and status_code < 500


def before_send(event: Event, hint: Hint) -> Event | None:
    """Drop client errors; scrub everything else."""
    exc_info = hint.get("exc_info")
    if exc_info and isinstance(exc_info[1], BaseException) and is_expected_error(exc_info[1]):
        return None
    scrubbed: Event = scrub(event)
    return scrubbed


def init_sentry(
    dsn: str | None,
    *,
    debug: bool = False,
    release: str | None = None,
    environment: str | None = None,
    transport: Transport | None = None,
) -> bool:
    """Start Sentry when a DSN (or, in tests, a transport) is given; returns whether it started.

    Call it before building the app, so framework integrations hook in.
    """
    if not dsn and transport is None:
        return False
    for name in IGNORED_LOGGERS:
        ignore_logger(name)
    sentry_sdk.init(
        dsn=dsn or None,
        debug=debug,
        release=release,
        environment=environment,
        transport=transport,
        # `send_default_pii` is left unset: unset means False, and this sentry-sdk deprecates passing it
        # in favour of `data_collection` (which would also switch off the default event scrubber).
        include_local_variables=False,
        max_request_body_size="never",
        before_send=before_send,
        integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
    )
    return True


def release_from_version_file(path: str | Path) -> str | None:
    """The release name from `version.json`: its `version`, else its `commit`; None when unreadable."""
    try:
        return release_from_version_document(Path(path).read_bytes())
    except OSError:
        return None


def release_from_version_document(text: bytes) -> str | None:
    """The release name in a `version.json` document: its `version`, else its `commit`."""
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    for key in ("version", "commit"):
        value = document.get(key)
        if isinstance(value, str) and value:
            return value
    return None
