"""What the access log may show of a request: headers, query and path with secrets and addresses blanked
(R§7.2, SPEC §9), and which e-mail addresses ask to be traced (R§2.2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from ctms_core.domain.tracing import is_traced

__all__ = [
    "OMITTED",
    "REDACTED_HEADERS",
    "REDACTED_QUERY_PARAMS",
    "is_traced",
    "redact_headers",
    "redact_path",
    "redact_path_value",
    "redact_query",
    "traced_addresses",
]

OMITTED = "[OMITTED]"
REDACTED_HEADERS = frozenset({"authorization", "cookie"})
REDACTED_QUERY_PARAMS = frozenset({"primary_email", "fxa_primary_email", "pubsub_client"})

# v3 matched `+trace-me-mozilla-`; its documentation said `+trace_me_mozilla_`: both are accepted (SPEC §4.11).

HeaderPairs = Iterable[tuple[bytes, bytes]] | Iterable[tuple[str, str]]


def _text(value: str | bytes) -> str:
    # ASGI header names and values are byte strings; HTTP/1.1 only guarantees latin-1.
    return value.decode("latin-1") if isinstance(value, bytes) else value


def redact_headers(headers: Mapping[str, str] | HeaderPairs) -> dict[str, str]:
    """All request headers by lower-case name, the first value of a repeated header winning (as v3's
    `dict(request.headers)` did); `authorization` and `cookie` shown as `[OMITTED]`."""
    pairs: Iterable[tuple[str | bytes, str | bytes]] = (
        headers.items() if isinstance(headers, Mapping) else headers
    )
    redacted: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name = _text(raw_name).lower()
        if name in redacted:
            continue
        redacted[name] = OMITTED if name in REDACTED_HEADERS else _text(raw_value)
    return redacted


def redact_query(
    params: str | bytes | Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    """All query parameters (a raw query string or parsed pairs), the last value of a repeated parameter
    winning (as v3's `dict(request.query_params)` did); `primary_email` and `fxa_primary_email` shown as
    `[OMITTED]`."""
    pairs: Iterable[tuple[str, str]]
    if isinstance(params, str | bytes):
        pairs = parse_qsl(_text(params), keep_blank_values=True)
    elif isinstance(params, Mapping):
        pairs = params.items()
    else:
        pairs = params
    return {name: OMITTED if name in REDACTED_QUERY_PARAMS else value for name, value in pairs}


def _looks_like_address(text: str) -> bool:
    return "@" in text or "%40" in text.lower()


def redact_path(path: str) -> str:
    """`path` with every segment that holds an e-mail address (`DELETE /ctms/{primary_email}`) shown as
    `[OMITTED]`: addresses never reach the logs except through the documented tracing (SPEC §9)."""
    if not _looks_like_address(path):
        return path
    return "/".join(
        OMITTED if _looks_like_address(segment) else segment for segment in path.split("/")
    )


def redact_path_value(value: str) -> str:
    """A path parameter, `[OMITTED]` when it holds an e-mail address."""
    return OMITTED if _looks_like_address(value) else value


def traced_addresses(*emails: str | None) -> list[str]:
    """The addresses among `emails` that ask for tracing, in order, each once."""
    traced: list[str] = []
    for email in emails:
        if email is not None and is_traced(email) and email not in traced:
            traced.append(email)
    return traced
