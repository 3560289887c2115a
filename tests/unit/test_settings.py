"""Settings read from CTMS_* environment variables (ctms_entrypoints.settings)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from ctms_entrypoints.settings import (
    DEFAULT_PUBSUB_JWKS_URL,
    Settings,
    SettingsError,
    default_data_dir,
    parse_duration,
)

HOME_ONLY = {"HOME": "/home/ctms"}


def load(**env: str) -> Settings:
    return Settings.from_env({**HOME_ONLY, **env})


def test_defaults_are_the_v3_code_defaults() -> None:
    """With an empty environment every v3 variable has its code default (not the docs' one)."""
    settings = load()
    assert settings.db_url is None
    assert settings.async_db_url is None
    assert (
        settings.db_pool_size,
        settings.db_max_overflow,
        settings.db_pool_timeout_in_seconds,
        settings.db_pool_recycle_in_seconds,
    ) == (5, 10, 30, 900)
    assert settings.secret_key is None
    assert settings.token_expiration == timedelta(seconds=3600)
    assert settings.token_expiration_seconds == 3600
    assert settings.server_prefix == "http://localhost:8000"
    assert settings.use_mozlog is True
    assert settings.log_sqlalchemy is False
    assert settings.logging_level == "INFO"
    assert settings.sentry_debug is False
    assert settings.fastapi_env is None
    assert settings.host == "0.0.0.0"  # noqa: S104 - the v3 default
    assert settings.port == 8000
    assert (settings.pubsub_audience, settings.pubsub_email, settings.pubsub_client) == (
        None,
        None,
        None,
    )
    assert settings.acoustic_retry_limit == 6
    assert settings.acoustic_batch_limit == 20
    assert settings.acoustic_loop_min_secs == 5
    assert settings.acoustic_max_backlog is None
    assert settings.acoustic_max_retry_backlog is None
    assert settings.sentry_dsn is None


def test_background_defaults() -> None:
    """The sync worker's flags are off and its Acoustic credentials and tables unset."""
    settings = load()
    assert settings.acoustic_sync_feature_flag is False
    assert settings.acoustic_integration_feature_flag is False
    assert settings.acoustic_server_number == 6
    assert settings.acoustic_timeout_s == 5.0
    for name in (
        "acoustic_client_id",
        "acoustic_client_secret",
        "acoustic_refresh_token",
        "acoustic_main_table_id",
        "acoustic_newsletter_table_id",
        "acoustic_waitlist_table_id",
        "acoustic_product_subscriptions_id",
        "prometheus_pushgateway_url",
        "background_healthcheck_path",
        "background_healthcheck_age_s",
    ):
        assert getattr(settings, name) is None, name


def test_new_variables_defaults(normal_user: None) -> None:
    """Variables introduced by the rewrite default to v3-compatible behaviour."""
    settings = load()
    assert settings.data_dir == Path("/home/ctms/.local/share/ctms")
    assert settings.enforce_permissions is False
    assert settings.max_body_bytes == 1_048_576
    assert settings.acoustic_base_url is None
    assert settings.acoustic_concurrency == 5
    assert settings.pubsub_jwks_url == DEFAULT_PUBSUB_JWKS_URL
    assert settings.web_concurrency == 1
    assert settings.version_file is None


def test_every_field_is_read_from_its_documented_variable() -> None:
    """Field `x` comes from `CTMS_X`, except the four unprefixed v3 names."""
    names = Settings.env_names()
    unprefixed = {"host": "HOST", "port": "PORT", "sentry_dsn": "SENTRY_DSN"}
    unprefixed["fastapi_env"] = "FASTAPI_ENV"
    for field_name, env_name in names.items():
        assert env_name == unprefixed.get(field_name, f"CTMS_{field_name.upper()}")
    for v3_name in (
        "CTMS_DB_URL",
        "CTMS_DB_POOL_TIMEOUT_IN_SECONDS",
        "CTMS_DB_POOL_RECYCLE_IN_SECONDS",
        "CTMS_TOKEN_EXPIRATION",
        "CTMS_ACOUSTIC_MAX_RETRY_BACKLOG",
        "CTMS_ACOUSTIC_PRODUCT_SUBSCRIPTIONS_ID",
        "CTMS_PROMETHEUS_PUSHGATEWAY_URL",
        "CTMS_BACKGROUND_HEALTHCHECK_AGE_S",
        "CTMS_DATA_DIR",
        "CTMS_ENFORCE_PERMISSIONS",
        "CTMS_MAX_BODY_BYTES",
        "CTMS_ACOUSTIC_BASE_URL",
        "CTMS_ACOUSTIC_CONCURRENCY",
        "CTMS_PUBSUB_JWKS_URL",
        "CTMS_WEB_CONCURRENCY",
        "CTMS_VERSION_FILE",
    ):
        assert v3_name in names.values()


def test_values_are_parsed_into_their_types() -> None:
    """Strings from the environment become ints, floats, paths and durations."""
    settings = load(
        CTMS_DB_POOL_SIZE="7",
        CTMS_ACOUSTIC_TIMEOUT_S="2.5",
        CTMS_ACOUSTIC_LOOP_MIN_SECS="0.5",
        CTMS_ACOUSTIC_MAIN_TABLE_ID="123456",
        CTMS_BACKGROUND_HEALTHCHECK_PATH="/var/lib/ctms/health",
        CTMS_DATA_DIR="/srv/ctms",
        CTMS_VERSION_FILE="/app/version.json",
        CTMS_SECRET_KEY="s3cret",
        CTMS_LOGGING_LEVEL="debug",
        PORT="9000",
        HOST="127.0.0.1",
        SENTRY_DSN="https://key@sentry.example/1",
        FASTAPI_ENV="production",
    )
    assert settings.db_pool_size == 7
    assert settings.acoustic_timeout_s == 2.5
    assert settings.acoustic_loop_min_secs == 0.5
    assert settings.acoustic_main_table_id == 123456
    assert settings.background_healthcheck_path == Path("/var/lib/ctms/health")
    assert settings.data_dir == Path("/srv/ctms")
    assert settings.version_file == Path("/app/version.json")
    assert settings.secret_key == "s3cret"
    assert settings.logging_level == "DEBUG"
    assert (settings.host, settings.port) == ("127.0.0.1", 9000)
    assert settings.sentry_dsn == "https://key@sentry.example/1"
    assert settings.fastapi_env == "production"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *((spelling, True) for spelling in ("true", "TRUE", "True", "1", "yes", "YES", "on", "On")),
        *((spelling, False) for spelling in ("false", "FALSE", "0", "no", "No", "off", "OFF")),
        ("t", True),
        ("f", False),
        (" true ", True),
    ],
)
def test_boolean_spellings(raw: str, expected: bool) -> None:
    """Booleans accept true/false, 1/0, yes/no, on/off (and t/f), in any case."""
    assert load(CTMS_USE_MOZLOG=raw).use_mozlog is expected
    assert load(CTMS_ENFORCE_PERMISSIONS=raw).enforce_permissions is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3600", timedelta(hours=1)),
        ("90.5", timedelta(seconds=90.5)),
        ("01:00:00", timedelta(hours=1)),
        ("30:00", timedelta(minutes=30)),
        ("1 02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("2 days, 1:00:00", timedelta(days=2, hours=1)),
        ("PT1H", timedelta(hours=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT1H30M15S", timedelta(hours=1, minutes=30, seconds=15)),
        ("pt45m", timedelta(minutes=45)),
        ("P1W", timedelta(weeks=1)),
        ("P2D", timedelta(days=2)),
    ],
)
def test_token_expiration_duration_formats(raw: str, expected: timedelta) -> None:
    """CTMS_TOKEN_EXPIRATION takes seconds, [D ][HH:MM:]SS or ISO-8601 durations."""
    assert load(CTMS_TOKEN_EXPIRATION=raw).token_expiration == expected


def test_token_expiration_seconds_are_whole_seconds() -> None:
    """`expires_in` is the lifetime in whole seconds."""
    assert load(CTMS_TOKEN_EXPIRATION="P1DT2H").token_expiration_seconds == 93_600
    assert load(CTMS_TOKEN_EXPIRATION="90.9").token_expiration_seconds == 90


@pytest.mark.parametrize("raw", ["1h", "P", "PT", "P1Y", "P1M", "-PT1H", "-5", "1:2:3:4", "0"])
def test_bad_or_non_positive_token_expiration_is_rejected(raw: str) -> None:
    """Unparsable, calendar-dependent or non-positive lifetimes are configuration errors."""
    with pytest.raises(SettingsError, match="CTMS_TOKEN_EXPIRATION"):
        load(CTMS_TOKEN_EXPIRATION=raw)


def test_duration_parser_rejects_overflow() -> None:
    """A duration too large for timedelta is a ValueError, not an OverflowError."""
    with pytest.raises(ValueError, match="out of range"):
        parse_duration("P999999999999W")


def test_variable_names_are_case_insensitive() -> None:
    """`ctms_db_pool_size`, `Ctms_Use_Mozlog` and `port` are read like their upper-case names."""
    settings = load(ctms_db_pool_size="3", Ctms_Use_Mozlog="false", port="8123")
    assert settings.db_pool_size == 3
    assert settings.use_mozlog is False
    assert settings.port == 8123


def test_upper_case_spelling_wins_over_other_spellings() -> None:
    """When several spellings are set, the canonical upper-case one is used."""
    assert load(ctms_db_pool_size="3", CTMS_DB_POOL_SIZE="4").db_pool_size == 4
    assert load(CTMS_DB_POOL_SIZE="4", ctms_db_pool_size="3").db_pool_size == 4


def test_empty_values_mean_unset() -> None:
    """An empty variable (common in compose files) keeps the default."""
    settings = load(CTMS_ACOUSTIC_MAX_BACKLOG="", CTMS_DB_POOL_SIZE="  ", CTMS_SECRET_KEY="")
    assert settings.acoustic_max_backlog is None
    assert settings.db_pool_size == 5
    assert settings.secret_key is None


def test_string_values_are_kept_verbatim() -> None:
    """Secrets and other strings are not stripped or altered."""
    assert load(CTMS_SECRET_KEY=" spaced key ").secret_key == " spaced key "


@pytest.mark.parametrize(
    ("env", "variable", "problem"),
    [
        ({"CTMS_DB_POOL_SIZE": "abc"}, "CTMS_DB_POOL_SIZE", "expected an integer"),
        ({"CTMS_DB_POOL_SIZE": "5.0"}, "CTMS_DB_POOL_SIZE", "expected an integer"),
        ({"CTMS_LOGGING_LEVEL": "LOUD"}, "CTMS_LOGGING_LEVEL", "expected one of"),
        ({"CTMS_USE_MOZLOG": "maybe"}, "CTMS_USE_MOZLOG", "expected a boolean"),
        ({"CTMS_ACOUSTIC_TIMEOUT_S": "fast"}, "CTMS_ACOUSTIC_TIMEOUT_S", "expected a number"),
        ({"CTMS_ACOUSTIC_TIMEOUT_S": "nan"}, "CTMS_ACOUSTIC_TIMEOUT_S", "finite"),
        ({"CTMS_ACOUSTIC_TIMEOUT_S": "0"}, "CTMS_ACOUSTIC_TIMEOUT_S", "positive"),
        ({"PORT": "http"}, "PORT", "expected an integer"),
        ({"PORT": "70000"}, "PORT", "at most 65535"),
        ({"CTMS_DB_POOL_SIZE": "-1"}, "CTMS_DB_POOL_SIZE", "at least 0"),
        ({"CTMS_WEB_CONCURRENCY": "0"}, "CTMS_WEB_CONCURRENCY", "at least 1"),
        ({"CTMS_MAX_BODY_BYTES": "0"}, "CTMS_MAX_BODY_BYTES", "at least 1"),
        ({"CTMS_ACOUSTIC_CONCURRENCY": "0"}, "CTMS_ACOUSTIC_CONCURRENCY", "at least 1"),
        ({"CTMS_DB_URL": "mysql://u@h/db"}, "CTMS_DB_URL", "PostgreSQL URL"),
        ({"CTMS_DB_URL": "postgresql+psycopg://u@h/db"}, "CTMS_DB_URL", "PostgreSQL URL"),
        ({"CTMS_DB_URL": "postgres://u@h:port/db"}, "CTMS_DB_URL", "invalid PostgreSQL URL"),
    ],
)
def test_invalid_values_raise_naming_the_variable(
    env: dict[str, str], variable: str, problem: str
) -> None:
    """A bad value raises SettingsError whose message names the variable and the problem."""
    with pytest.raises(SettingsError) as caught:
        load(**env)
    assert variable in str(caught.value)
    assert problem in caught.value.problems[variable]


def test_all_invalid_variables_are_reported_together() -> None:
    """Parse errors and range errors are collected in one exception."""
    with pytest.raises(SettingsError) as caught:
        load(CTMS_DB_POOL_SIZE="abc", CTMS_LOGGING_LEVEL="LOUD", PORT="99999")
    assert set(caught.value.problems) == {"CTMS_DB_POOL_SIZE", "CTMS_LOGGING_LEVEL", "PORT"}


@pytest.mark.parametrize(
    "url",
    [
        "postgres://ctms:pw@db.internal:5432/ctms",
        "postgresql://ctms:pw@db.internal:5432/ctms",
        "postgresql+asyncpg://ctms:pw@db.internal:5432/ctms",
        "POSTGRESQL://ctms:pw@db.internal:5432/ctms",
    ],
)
def test_db_url_schemes_normalise_to_asyncpg(url: str) -> None:
    """Every accepted PostgreSQL scheme becomes the async SQLAlchemy URL; the rest is unchanged."""
    settings = load(CTMS_DB_URL=url)
    assert settings.db_url == url
    assert settings.async_db_url == "postgresql+asyncpg://ctms:pw@db.internal:5432/ctms"


def test_db_url_without_host_or_user_is_accepted() -> None:
    """Unix-socket URLs (as the embedded server uses) need neither user nor host."""
    url = "postgresql:///ctms?host=/var/run/ctms"
    assert load(CTMS_DB_URL=url).async_db_url == "postgresql+asyncpg:///ctms?host=/var/run/ctms"


def test_data_dir_follows_xdg_data_home(normal_user: None) -> None:
    """The embedded database lives in $XDG_DATA_HOME/ctms when that is set."""
    settings = Settings.from_env({"XDG_DATA_HOME": "/data/xdg", "HOME": "/home/ctms"})
    assert settings.data_dir == Path("/data/xdg/ctms")


def test_relative_xdg_data_home_is_ignored(normal_user: None) -> None:
    """The XDG spec says relative paths in XDG_DATA_HOME are invalid."""
    assert default_data_dir({"XDG_DATA_HOME": "rel", "HOME": "/h"}) == Path("/h/.local/share/ctms")


def test_data_dir_expands_the_home_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """CTMS_DATA_DIR may start with `~`."""
    monkeypatch.setenv("HOME", "/home/someone")
    assert load(CTMS_DATA_DIR="~/ctms-data").data_dir == Path("/home/someone/ctms-data")


def test_from_env_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without an explicit mapping, os.environ is read."""
    monkeypatch.setenv("CTMS_ACOUSTIC_BATCH_LIMIT", "42")
    assert Settings.from_env().acoustic_batch_limit == 42


def test_settings_are_immutable() -> None:
    """Settings cannot be changed after construction."""
    settings = load()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_replace_builds_overridden_settings_and_revalidates() -> None:
    """Tests derive variants with dataclasses.replace; constraints still apply."""
    settings = load()
    changed = dataclasses.replace(settings, enforce_permissions=True, db_url="postgres:///x")
    assert changed.enforce_permissions is True
    assert changed.async_db_url == "postgresql+asyncpg:///x"
    assert settings.enforce_permissions is False
    with pytest.raises(SettingsError, match="CTMS_WEB_CONCURRENCY"):
        dataclasses.replace(settings, web_concurrency=0)


def test_direct_construction_uses_defaults() -> None:
    """Settings() without arguments is a valid default configuration."""
    assert Settings().port == 8000


def test_pubsub_audience_falls_back_to_server_prefix() -> None:
    """Pub/Sub tokens must name CTMS_PUBSUB_AUDIENCE, else CTMS_SERVER_PREFIX (v3 behaviour)."""
    assert load(CTMS_SERVER_PREFIX="https://ctms.example").pubsub_expected_audience == (
        "https://ctms.example"
    )
    audience = load(CTMS_PUBSUB_AUDIENCE="https://aud.example")
    assert audience.pubsub_expected_audience == "https://aud.example"


def test_acoustic_base_url_defaults_to_the_server_number_pod() -> None:
    """Without CTMS_ACOUSTIC_BASE_URL the pod URL is built from the server number."""
    assert load(CTMS_ACOUSTIC_SERVER_NUMBER="3").acoustic_api_base_url == (
        "https://api-campaign-us-3.goacoustic.com"
    )
    fake = load(CTMS_ACOUSTIC_BASE_URL="http://127.0.0.1:9999/")
    assert fake.acoustic_api_base_url == "http://127.0.0.1:9999"


def test_repr_masks_secrets() -> None:
    """Logging the settings never shows keys, secrets or database passwords."""
    settings = load(
        CTMS_SECRET_KEY="top-secret-key",
        CTMS_DB_URL="postgresql://ctms:db-password@db/ctms",
        CTMS_ACOUSTIC_CLIENT_SECRET="acoustic-secret",
        CTMS_ACOUSTIC_REFRESH_TOKEN="refresh-token",
        CTMS_PUBSUB_CLIENT="pubsub-shared-secret",
        SENTRY_DSN="https://dsn-key@sentry.example/1",
    )
    text = repr(settings)
    for secret in (
        "top-secret-key",
        "db-password",
        "acoustic-secret",
        "refresh-token",
        "pubsub-shared-secret",
        "dsn-key",
    ):
        assert secret not in text
    assert "postgresql://ctms:***@db/ctms" in text


@pytest.fixture
def normal_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a test as if CTMS were started by an ordinary (non-root) user."""
    monkeypatch.setattr("ctms_entrypoints.settings.os.geteuid", lambda: 1000)


def test_root_keeps_its_data_outside_its_closed_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded server runs unprivileged and could not reach /root/.local/share."""
    monkeypatch.setattr("ctms_entrypoints.settings.os.geteuid", lambda: 0)
    assert default_data_dir({"HOME": "/root"}) == Path("/var/lib/ctms")


def test_sync_destinations_are_names_in_order_and_unknown_ones_are_refused() -> None:
    assert load().sync_destination_names == ("acoustic",)
    assert load(CTMS_SYNC_DESTINATIONS=" Braze , acoustic,braze").sync_destination_names == (
        "braze",
        "acoustic",
    )
    for raw in ("salesforce", "acoustic,salesforce", ",,"):
        with pytest.raises(SettingsError, match="CTMS_SYNC_DESTINATIONS"):
            load(CTMS_SYNC_DESTINATIONS=raw)


def test_the_give_up_time_defaults_to_a_day_and_is_not_negative() -> None:
    assert load().sync_give_up_after_seconds == 86_400
    assert load(CTMS_SYNC_GIVE_UP_AFTER_SECONDS="0").sync_give_up_after_seconds == 0
    with pytest.raises(SettingsError, match="CTMS_SYNC_GIVE_UP_AFTER_SECONDS"):
        load(CTMS_SYNC_GIVE_UP_AFTER_SECONDS="-1")
