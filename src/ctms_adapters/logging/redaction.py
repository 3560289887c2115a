"""What the access log may show of a request: headers, query and path with secrets and addresses blanked
and every value's size bounded (docs/contract.md §11.2, §16.4, docs/observability.md), and which e-mail addresses ask
to be traced (docs/contract.md §2.2)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from ctms_core.domain.redaction import ADDRESS_PLACEHOLDER, redact_addresses
from ctms_core.domain.tracing import is_traced

__all__ = [
    "MAX_LOGGED_CHARS",
    "MAX_LOGGED_ITEMS",
    "OMITTED",
    "REDACTED_HEADERS",
    "REDACTED_QUERY_PARAMS",
    "is_sensitive",
    "is_traced",
    "loggable",
    "redact_addresses",
    "redact_headers",
    "redact_path",
    "redact_path_value",
    "redact_query",
    "traced_addresses",
]

OMITTED = ADDRESS_PLACEHOLDER
# Request headers and query parameters whose values are always omitted (names compared in lower case).
# The names are only a complement: any value that looks like an address or a credential is omitted
# wherever it is (`is_sensitive`).
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
REDACTED_QUERY_PARAMS = frozenset(
    {"primary_email", "fxa_primary_email", "pubsub_client", "client_secret", "access_token"}
)
#: The longest text logged from a request (a header, a query parameter, the path, ...); the rest is cut.
MAX_LOGGED_CHARS = 1024
#: The most headers and query parameters logged from one request; the rest are counted.
MAX_LOGGED_ITEMS = 64

# Credentials by shape (`is_sensitive`): an `Authorization`-style value, a JWT (its base64url header
# starts `eyJ`), a CTMS client secret (`secret_…`).
_AUTH_SCHEMES = frozenset({"bearer", "basic", "digest", "negotiate", "token"})

# v3 matched `+trace-me-mozilla-`; its documentation said `+trace_me_mozilla_`: both are accepted (docs/contract.md §11.1, §11.2).

HeaderPairs = Iterable[tuple[bytes, bytes]] | Iterable[tuple[str, str]]


def _text(value: str | bytes) -> str:
    # ASGI header names and values are byte strings; HTTP/1.1 only guarantees latin-1.
    return value.decode("latin-1") if isinstance(value, bytes) else value


def is_sensitive(text: str) -> bool:
    """Whether `text` holds what may never be logged: an e-mail address (also URL-encoded) or something
    shaped like a credential (`Bearer …`/`Basic …`, a JWT, a client secret). Plain substring tests: this
    runs on every header of every request."""
    if "@" in text or "%40" in text or "eyJ" in text or "secret_" in text:
        return True
    if " " not in text:
        return False
    return text.partition(" ")[0].lower() in _AUTH_SCHEMES


def _bounded(text: str) -> str:
    if len(text) <= MAX_LOGGED_CHARS:
        return text
    return f"{text[:MAX_LOGGED_CHARS]}…[{len(text) - MAX_LOGGED_CHARS} more characters]"


def loggable(text: str) -> str:
    """`text` as a log may show it: `[OMITTED]` when sensitive, else cut to `MAX_LOGGED_CHARS`."""
    return OMITTED if is_sensitive(text) else _bounded(text)


def _with_overflow(logged: dict[str, str], left_out: int) -> dict[str, str]:
    if left_out:
        logged["[more]"] = f"{left_out} more not logged"
    return logged


def redact_headers(headers: Mapping[str, str] | HeaderPairs) -> dict[str, str]:
    """All request headers by lower-case name, the first value of a repeated header winning (as v3's
    `dict(request.headers)` did); `REDACTED_HEADERS` and sensitive values shown as `[OMITTED]`, other
    values and names cut to `MAX_LOGGED_CHARS`, at most `MAX_LOGGED_ITEMS` headers."""
    pairs: Iterable[tuple[str | bytes, str | bytes]] = (
        headers.items() if isinstance(headers, Mapping) else headers
    )
    redacted: dict[str, str] = {}
    left_out = 0
    for raw_name, raw_value in pairs:
        name = _text(raw_name).lower()
        if name in redacted:
            continue
        if len(redacted) >= MAX_LOGGED_ITEMS:
            left_out += 1
            continue
        value = _text(raw_value)
        # Names are HTTP tokens (no `@`, no spaces): bounded, not inspected.
        if name in REDACTED_HEADERS or is_sensitive(value):
            redacted[_bounded(name)] = OMITTED
        else:
            redacted[_bounded(name)] = _bounded(value)
    return _with_overflow(redacted, left_out)


def redact_query(
    params: str | bytes | Mapping[str, str] | Iterable[tuple[str, str]],
) -> dict[str, str]:
    """All query parameters (a raw query string or parsed pairs), the last value of a repeated parameter
    winning (as v3's `dict(request.query_params)` did); `REDACTED_QUERY_PARAMS` (in any case) and
    sensitive values shown as `[OMITTED]`, the rest cut as `redact_headers` does."""
    pairs: Iterable[tuple[str, str]]
    if isinstance(params, str | bytes):
        pairs = parse_qsl(_text(params), keep_blank_values=True)
    elif isinstance(params, Mapping):
        pairs = params.items()
    else:
        pairs = params
    redacted: dict[str, str] = {}
    left_out = 0
    for name, value in pairs:
        logged_name = loggable(name)
        if logged_name not in redacted and len(redacted) >= MAX_LOGGED_ITEMS:
            left_out += 1
            continue
        if name.lower() in REDACTED_QUERY_PARAMS or is_sensitive(value):
            redacted[logged_name] = OMITTED
        else:
            redacted[logged_name] = _bounded(value)
    return _with_overflow(redacted, left_out)


def redact_path(path: str) -> str:
    """`path` with every segment that is sensitive (`DELETE /ctms/{primary_email}`, a token) shown as
    `[OMITTED]`, cut to `MAX_LOGGED_CHARS`: addresses never reach the logs except through the documented
    tracing (docs/contract.md §16.4)."""
    if not is_sensitive(path):
        return _bounded(path)
    return _bounded("/".join(loggable(segment) for segment in path.split("/")))


def redact_path_value(value: str) -> str:
    """A path parameter, `[OMITTED]` when sensitive, else cut to `MAX_LOGGED_CHARS`."""
    return loggable(value)


def traced_addresses(*emails: str | None) -> list[str]:
    """The addresses among `emails` that ask for tracing, in order, each once."""
    traced: list[str] = []
    for email in emails:
        if email is not None and is_traced(email) and email not in traced:
            traced.append(email)
    return traced
