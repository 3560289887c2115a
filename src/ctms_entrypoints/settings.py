"""Typed, immutable settings read from `CTMS_*` environment variables (docs/contract.md §12).

Every variable of CTMS v3.3 keeps its name and its *code* default (not the older docs' numbers).
Rules shared by all variables:

* Names are case-insensitive (`CTMS_DB_URL`, `ctms_db_url`); the upper-case spelling wins when
  several spellings are set. `HOST`, `PORT`, `SENTRY_DSN` and `FASTAPI_ENV` have no prefix.
* An empty value counts as unset, so `CTMS_ACOUSTIC_MAX_BACKLOG=` keeps the default (`None`).
* Booleans: `true/false/1/0/yes/no/on/off` (and `t/f/y/n`, like CTMS v3), any case.
* Durations (`CTMS_TOKEN_EXPIRATION`): integer or decimal seconds (`3600`), `[D ][[HH:]MM:]SS`
  (`01:00:00`, `1 02:00:00`, `1 day, 2:00:00`), or ISO-8601 without years and months (`PT1H`,
  `P1DT2H`, `P1W`).
* Any invalid value raises `SettingsError`, naming every offending variable at once.

Tests build variants with `dataclasses.replace(settings, field=value)`; constraints are checked
again on every construction.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from ctms_core.domain.erasure import DEFAULT_ERASURE_ADDRESS_RETENTION
from ctms_core.domain.sync import DEFAULT_GIVE_UP_AFTER

__all__ = [
    "DEFAULT_PUBSUB_JWKS_URL",
    "LOGGING_LEVELS",
    "LoggingLevel",
    "Settings",
    "SettingsError",
    "default_data_dir",
    "parse_bool",
    "parse_duration",
]

LoggingLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
LOGGING_LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)

DEFAULT_PUBSUB_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
#: The destinations `ctms sync` can deliver to (`CTMS_SYNC_DESTINATIONS`); each has its provider in the
#: composition root (`ctms_entrypoints.container`).
SYNC_DESTINATIONS = ("acoustic", "braze")

_ENV_PREFIX = "CTMS_"
_DB_SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")
_ASYNC_DB_SCHEME = "postgresql+asyncpg"
_SECRET_FIELDS = frozenset(
    {"secret_key", "pubsub_client", "acoustic_client_secret", "acoustic_refresh_token"}
    | {"braze_api_key"}
    | {"erasure_hash_salt"}
    | {"sentry_dsn"}  # the DSN embeds the project's key
)
_URL_FIELDS_WITH_CREDENTIALS = frozenset({"db_url", "prometheus_pushgateway_url"})


class SettingsError(ValueError):
    """One or more environment variables hold unusable values; `problems` maps name → problem."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__(
            "invalid configuration: " + "; ".join(f"{k}: {v}" for k, v in self.problems.items())
        )


def default_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """The per-user data folder: `$XDG_DATA_HOME/ctms`, else `~/.local/share/ctms`; `/var/lib/ctms` for
    root, because the embedded PostgreSQL runs as an unprivileged user (it refuses root) that must be
    able to reach the folder, and root's home folder is closed to other users."""
    if os.geteuid() == 0:
        return Path("/var/lib/ctms")
    xdg = environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative paths
        return Path(xdg) / "ctms"
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".local" / "share" / "ctms"


def _env(name: str) -> dict[str, str]:
    """Field metadata: read from `name` instead of `CTMS_<FIELD NAME>`."""
    return {"env": name}


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Settings:
    """Configuration of every CTMS process; field `x` is read from `CTMS_X` unless noted."""

    # --- docs/contract.md §12 API process ---------------------------------------------------------
    #: PostgreSQL URL: `postgres://`, `postgresql://` or `postgresql+asyncpg://`. None → `ctms
    #: serve`/`ctms sync` start the embedded server in `data_dir` (docs/contract.md §15). See `async_db_url`.
    db_url: str | None = None
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_pool_timeout_in_seconds: int = 30
    db_pool_recycle_in_seconds: int = 900
    #: HS256 key for access tokens. Required by the HTTP API (which may generate a development
    #: key); optional here so that CLI commands that need no tokens run without it.
    secret_key: str | None = None
    #: Access-token lifetime and `expires_in` of `POST /token`.
    token_expiration: timedelta = timedelta(seconds=3600)
    #: Public base URL: `/updates` `next` links, Pub/Sub audience fallback, CLI hints.
    server_prefix: str = "http://localhost:8000"
    use_mozlog: bool = True
    log_sqlalchemy: bool = False
    logging_level: LoggingLevel = "INFO"
    sentry_debug: bool = False
    fastapi_env: str | None = field(default=None, metadata=_env("FASTAPI_ENV"))  # informational
    host: str = field(default="0.0.0.0", metadata=_env("HOST"))  # noqa: S104 - production default; `ctms serve` picks 127.0.0.1 in development mode
    port: int = field(default=8000, metadata=_env("PORT"))
    #: Expected `aud` of Pub/Sub OIDC tokens; None → `server_prefix` (`pubsub_expected_audience`).
    pubsub_audience: str | None = None
    #: Expected service-account `email` claim of Pub/Sub tokens (required by the push endpoint).
    pubsub_email: str | None = None
    #: Shared secret expected in `?pubsub_client=` (required by the push endpoint).
    pubsub_client: str | None = None
    acoustic_retry_limit: int = 6
    acoustic_batch_limit: int = 20
    #: Minimum seconds between sync passes (decimals allowed, unlike v3's int).
    acoustic_loop_min_secs: float = 5.0
    #: `/__heartbeat__` fails when the sync backlog exceeds this (None → no limit).
    acoustic_max_backlog: int | None = None
    #: `/__heartbeat__` fails when the retry backlog exceeds this (None → no limit).
    acoustic_max_retry_backlog: int | None = None
    sentry_dsn: str | None = field(default=None, metadata=_env("SENTRY_DSN"))

    # --- docs/contract.md §12 background sync -----------------------------------------------------
    #: Run the sync loop at all.
    acoustic_sync_feature_flag: bool = False
    #: Actually call Acoustic (false → the loop drains the queue without uploading).
    acoustic_integration_feature_flag: bool = False
    #: Acoustic pod: `https://api-campaign-us-<N>.goacoustic.com` (see `acoustic_api_base_url`).
    acoustic_server_number: int = 6
    acoustic_timeout_s: float = 5.0
    # OAuth refresh-token grant and table ids: required by `ctms sync` with the integration flag,
    # optional here so that the API process starts without them.
    acoustic_client_id: str | None = None
    acoustic_client_secret: str | None = None
    acoustic_refresh_token: str | None = None
    acoustic_main_table_id: int | None = None
    acoustic_newsletter_table_id: int | None = None
    acoustic_waitlist_table_id: int | None = None
    acoustic_product_subscriptions_id: int | None = None
    #: Pushgateway the worker pushes its metrics to after every pass (None → no push).
    prometheus_pushgateway_url: str | None = None
    #: File the worker touches after every pass (None → none).
    background_healthcheck_path: Path | None = None
    #: Maximum age in seconds of that file for `ctms healthcheck-sync`.
    background_healthcheck_age_s: int | None = None
    #: CTMS_BACKGROUND_METRICS_PORT: port of the worker's own `/metrics` endpoint (0 → none).
    background_metrics_port: int = 9001

    # --- Introduced by this rewrite ------------------------------------------------------------
    #: CTMS_DATA_DIR: data directory of the embedded PostgreSQL used when `db_url` is None.
    data_dir: Path = field(default_factory=default_data_dir)
    #: CTMS_ENFORCE_PERMISSIONS: when false, API clients without any role keep full access
    #: (v3 behaviour); when true, every route requires its permission (docs/contract.md §14.1).
    enforce_permissions: bool = False
    #: CTMS_ERASURE_HASH_SALT: keys the hashes of erased addresses in the erasure audit trail (SPEC
    #: §7). None → derived from `secret_key`; set it to keep the hashes comparable across key rotations.
    erasure_hash_salt: str | None = None
    #: CTMS_TOKEN_CACHE_SECONDS: how long an API process trusts a bearer token it verified before it
    #: reads the client again (decimals allowed); revocation, disabling and role changes take effect
    #: within this time. 0 → every request reads the client.
    token_cache_seconds: float = 1.0
    #: CTMS_TOKEN_FAILURES_PER_CLIENT / CTMS_TOKEN_FAILURES_PER_ADDRESS: failed `POST /token` attempts
    #: allowed per client id / per caller address within CTMS_TOKEN_FAILURE_WINDOW_SECONDS; more get 429
    #: with `Retry-After` until the window has passed. Counted per API process; 0 → no limit.
    token_failures_per_client: int = 10
    token_failures_per_address: int = 30
    token_failure_window_seconds: float = 60.0
    #: CTMS_REQUEST_READ_TIMEOUT_SECONDS: a request's headers must arrive within this time of the server
    #: waiting for them, and its body within this time of the headers; else 408 and the connection is
    #: closed (docs/deployment.md).
    request_read_timeout_seconds: float = 10.0
    #: CTMS_WAITLIST_RULES_CACHE_SECONDS: how long an API process validates waitlist `fields` with the
    #: rules it read before reading them again (decimals allowed); a rule changed with
    #: `ctms waitlists rules` is enforced within this time (docs/waitlists.md). 0 → read on every write.
    waitlist_rules_cache_seconds: float = 60.0
    #: CTMS_MAX_BODY_BYTES: larger request bodies are refused with 413 (docs/contract.md §16.4).
    max_body_bytes: int = 1_048_576
    #: CTMS_ACOUSTIC_BASE_URL: Acoustic API base URL; None → derived from the server number.
    #: Points the worker at a fake Acoustic in tests and benchmarks.
    acoustic_base_url: str | None = None
    #: CTMS_ACOUSTIC_CONCURRENCY: Acoustic requests one batch has in flight at once (a worker delivers
    #: CTMS_SYNC_BATCHES_IN_FLIGHT batches at once; CTMS_ACOUSTIC_MAX_CONCURRENT bounds them all).
    acoustic_concurrency: int = 5
    #: CTMS_ACOUSTIC_MAX_CONCURRENT: requests in flight against Acoustic across the whole deployment,
    #: every `ctms sync` process together (the account's limit; enforced through PostgreSQL).
    acoustic_max_concurrent: int = 10
    #: CTMS_PUBSUB_JWKS_URL: where Google's OIDC signing keys are fetched for Pub/Sub push tokens.
    pubsub_jwks_url: str = DEFAULT_PUBSUB_JWKS_URL
    #: CTMS_WEB_CONCURRENCY: number of API worker processes `ctms serve` runs.
    web_concurrency: int = 1
    #: CTMS_VERSION_FILE: `version.json` served by `/__version__` (None → the default lookup).
    version_file: Path | None = None
    #: CTMS_ERASURE_ADDRESS_RETENTION: how long an erased contact's address may wait in the Acoustic
    #: sync queue for its erasure to be delivered; then it is dropped (docs/permissions.md). With
    #: Acoustic sync off no address is kept at all.
    erasure_address_retention: timedelta = DEFAULT_ERASURE_ADDRESS_RETENTION
    #: CTMS_DB_STATEMENT_TIMEOUT_SECONDS: longest a database statement may take (decimals allowed).
    #: PostgreSQL cancels it then; a database that does not answer at all is given up on a second
    #: later and the connection discarded. Either way the request answers 503 (docs/configuration.md).
    db_statement_timeout_seconds: float = 5.0
    #: CTMS_DB_CONNECT_TIMEOUT_SECONDS: longest opening a database connection may take, then 503.
    db_connect_timeout_seconds: float = 5.0
    #: CTMS_SYNC_DESTINATIONS: where `ctms sync` delivers contacts, comma-separated: `acoustic`,
    #: `braze` or `acoustic,braze` (docs/adr/0009-one-sync-queue.md). See `sync_destination_names`.
    sync_destinations: str = "acoustic"
    #: CTMS_SYNC_GIVE_UP_AFTER_SECONDS: a contact is given up only after failing without a break for
    #: this long (and at least CTMS_ACOUSTIC_RETRY_LIMIT times); an erasure never is (docs/acoustic.md).
    sync_give_up_after_seconds: float = DEFAULT_GIVE_UP_AFTER.total_seconds()
    #: CTMS_SYNC_BATCHES_IN_FLIGHT: batches one worker delivers at once per destination, so the next
    #: batch is claimed while the previous one is still being delivered.
    sync_batches_in_flight: int = 2
    #: CTMS_BRAZE_URL / CTMS_BRAZE_API_KEY: the workspace's REST endpoint and a key with `users.track`
    #: and `users.delete`; required by `ctms sync` when `braze` is a destination (docs/braze.md).
    braze_url: str | None = None
    braze_api_key: str | None = None
    #: CTMS_BRAZE_TIMEOUT_S: HTTP timeout of one Braze request.
    braze_timeout_s: float = 10.0
    #: CTMS_BRAZE_MAX_CONCURRENT: Braze requests in flight per worker (up to 75 users each).
    braze_max_concurrent: int = 4
    #: CTMS_BRAZE_MAX_RATE_LIMIT_WAIT_S: longest a request waits for a 429's reset before its users
    #: fail as an outage.
    braze_max_rate_limit_wait_s: float = 60.0
    #: CTMS_BRAZE_BATCH_LIMIT: contacts one pass of the braze loop claims (CTMS_ACOUSTIC_BATCH_LIMIT is
    #: Acoustic's): enough to fill several 75-user requests at once.
    braze_batch_limit: int = 300

    _MINIMUMS: ClassVar[Mapping[str, float]] = {
        "db_pool_size": 0,
        "db_max_overflow": -1,  # SQLAlchemy: -1 = no overflow limit
        "db_pool_timeout_in_seconds": 0,
        "db_pool_recycle_in_seconds": -1,  # SQLAlchemy: -1 = never recycle
        "port": 0,
        "acoustic_retry_limit": 0,
        "acoustic_batch_limit": 1,
        "acoustic_loop_min_secs": 0,
        "acoustic_max_backlog": 0,
        "acoustic_max_retry_backlog": 0,
        "acoustic_server_number": 0,
        "background_healthcheck_age_s": 0,
        "background_metrics_port": 0,
        "max_body_bytes": 1,
        "token_cache_seconds": 0,
        "token_failures_per_client": 0,
        "token_failures_per_address": 0,
        "token_failure_window_seconds": 0,
        "waitlist_rules_cache_seconds": 0,
        "acoustic_concurrency": 1,
        "acoustic_max_concurrent": 1,
        "web_concurrency": 1,
        "sync_give_up_after_seconds": 0,
        "sync_batches_in_flight": 1,
        "braze_max_concurrent": 1,
        "braze_max_rate_limit_wait_s": 0,
        "braze_batch_limit": 1,
    }

    def __post_init__(self) -> None:
        problems: dict[str, str] = {}
        for name, minimum in self._MINIMUMS.items():
            value = getattr(self, name)
            if value is not None and value < minimum:
                problems[_env_name(name)] = f"must be at least {minimum:g}, got {value!r}"
        if self.port > 65535:
            problems[_env_name("port")] = f"must be at most 65535, got {self.port!r}"
        for name in (
            "acoustic_timeout_s",
            "braze_timeout_s",
            "db_statement_timeout_seconds",
            "db_connect_timeout_seconds",
            "request_read_timeout_seconds",
        ):
            seconds = getattr(self, name)
            if not (seconds > 0 and math.isfinite(seconds)):
                problems[_env_name(name)] = "must be a positive number of seconds"
        unknown = set(self.sync_destination_names) - set(SYNC_DESTINATIONS)
        if unknown or not self.sync_destination_names:
            problems[_env_name("sync_destinations")] = (
                f"must name one or more of {', '.join(SYNC_DESTINATIONS)}, "
                f"got {self.sync_destinations!r}"
            )
        if self.token_expiration <= timedelta(0):
            problems[_env_name("token_expiration")] = "must be a positive duration"
        if self.erasure_address_retention <= timedelta(0):
            problems[_env_name("erasure_address_retention")] = "must be a positive duration"
        if self.logging_level not in LOGGING_LEVELS:
            problems[_env_name("logging_level")] = (
                f"must be one of {', '.join(LOGGING_LEVELS)}, got {self.logging_level!r}"
            )
        if self.db_url is not None:
            try:
                _normalise_db_url(self.db_url)
            except ValueError as error:
                problems[_env_name("db_url")] = str(error)
        if problems:
            raise SettingsError(problems)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Settings from `environ`; unset or empty variables keep their defaults."""
        by_name: dict[str, str] = {}
        for key, value in environ.items():
            upper = key.upper()
            if key == upper or upper not in by_name:
                by_name[upper] = value

        values: dict[str, Any] = {}
        problems: dict[str, str] = {}
        hints = get_type_hints(cls)
        for spec in dataclasses.fields(cls):
            env_name = _env_name(spec.name)
            raw = by_name.get(env_name)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[spec.name] = _parser_for(hints[spec.name])(raw)
            except ValueError as error:
                problems[env_name] = str(error)
        if "data_dir" not in values:
            values["data_dir"] = default_data_dir(environ)
        try:
            settings = cls(**values)  # unparsable variables fall back to defaults here
        except SettingsError as error:
            problems.update(error.problems)
        if problems:
            raise SettingsError(problems)
        return settings

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name → environment variable name, for documentation and diagnostics."""
        return {spec.name: _env_name(spec.name) for spec in dataclasses.fields(cls)}

    @property
    def async_db_url(self) -> str | None:
        """`db_url` with the `postgresql+asyncpg://` scheme SQLAlchemy's async engine needs."""
        return None if self.db_url is None else _normalise_db_url(self.db_url)

    @property
    def token_expiration_seconds(self) -> int:
        """The token lifetime in whole seconds (`expires_in` of `POST /token`)."""
        return int(self.token_expiration.total_seconds())

    @property
    def pubsub_expected_audience(self) -> str:
        """The `aud` Pub/Sub tokens must carry: `pubsub_audience`, else `server_prefix` (v3)."""
        return self.pubsub_audience or self.server_prefix

    @property
    def sync_destination_names(self) -> tuple[str, ...]:
        """`sync_destinations` as names, in order, without repeats or blanks."""
        names = (name.strip().lower() for name in self.sync_destinations.split(","))
        return tuple(dict.fromkeys(name for name in names if name))

    @property
    def acoustic_api_base_url(self) -> str:
        """`acoustic_base_url`, else the production pod URL for `acoustic_server_number`."""
        if self.acoustic_base_url:
            return self.acoustic_base_url.rstrip("/")
        return f"https://api-campaign-us-{self.acoustic_server_number}.goacoustic.com"

    def __repr__(self) -> str:
        """Field values with secrets masked, so settings can be logged."""
        parts = []
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if value is not None and spec.name in _SECRET_FIELDS:
                value = "***"
            elif value is not None and spec.name in _URL_FIELDS_WITH_CREDENTIALS:
                value = _mask_url_password(value)
            parts.append(f"{spec.name}={value!r}")
        return f"Settings({', '.join(parts)})"


def _env_name(field_name: str) -> str:
    for spec in dataclasses.fields(Settings):
        if spec.name == field_name:
            return str(spec.metadata.get("env", _ENV_PREFIX + field_name.upper()))
    raise KeyError(field_name)


# --- value parsers ----------------------------------------------------------------------------

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def parse_bool(raw: str) -> bool:
    """`true/false/1/0/yes/no/on/off/t/f/y/n`, any case."""
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false, 1/0, yes/no, on/off), got {raw!r}")


def _parse_int(raw: str) -> int:
    text = raw.strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError(f"expected an integer, got {raw!r}")
    return int(text)


def _parse_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


def _parse_logging_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOGGING_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOGGING_LEVELS)}, got {raw!r}")
    return level


def _parse_path(raw: str) -> Path:
    return Path(raw).expanduser()


def _parse_str(raw: str) -> str:
    return raw


_SECONDS_RE = re.compile(r"\d+(?:\.\d+)?")
_CLOCK_RE = re.compile(
    r"(?:(?P<days>\d+) (?:days?,? )?)?"
    r"(?:(?:(?P<hours>\d+):)?(?P<minutes>\d+):)?"
    r"(?P<seconds>\d+(?:\.\d+)?)"
)
_ISO_RE = re.compile(
    r"P(?!$)(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


def parse_duration(raw: str) -> timedelta:
    """Seconds (`3600`), `[D ][[HH:]MM:]SS` (`01:00:00`, `1 day, 2:00:00`) or ISO-8601 (`PT1H`)."""
    text = raw.strip()
    try:
        if _SECONDS_RE.fullmatch(text):
            return timedelta(seconds=float(text))
        match = _CLOCK_RE.fullmatch(text) or _ISO_RE.fullmatch(text)
        if match:
            parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
            return timedelta(**parts)
    except OverflowError:
        raise ValueError(f"duration out of range: {raw!r}") from None
    raise ValueError(
        "expected a duration: seconds (3600), [D ][HH:MM:]SS (01:00:00) "
        f"or ISO-8601 without years/months (PT1H), got {raw!r}"
    )


_PARSERS: dict[Any, Callable[[str], Any]] = {
    bool: parse_bool,
    int: _parse_int,
    float: _parse_float,
    str: _parse_str,
    Path: _parse_path,
    timedelta: parse_duration,
    LoggingLevel: _parse_logging_level,
}


def _parser_for(hint: Any) -> Callable[[str], Any]:
    if get_origin(hint) in (Union, types.UnionType):
        (inner,) = (arg for arg in get_args(hint) if arg is not type(None))
        return _parser_for(inner)
    return _PARSERS[hint]


# --- URLs -------------------------------------------------------------------------------------


def _normalise_db_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _DB_SCHEMES:
        raise ValueError(
            "expected a PostgreSQL URL starting with postgres://, postgresql:// "
            "or postgresql+asyncpg://"
        )
    try:
        urlsplit(url).port  # noqa: B018 - raises ValueError for a non-numeric port
    except ValueError as error:
        raise ValueError(f"invalid PostgreSQL URL: {error}") from None
    return f"{_ASYNC_DB_SCHEME}://{rest}"


def _mask_url_password(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "***"
    if not password:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))
