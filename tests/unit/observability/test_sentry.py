"""Sentry: what gets reported and what never leaves the process (docs/contract.md §11.4)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from ctms_core.domain.errors import ContactConflictError, ContactNotFoundError, CoreError
from ctms_entrypoints.observability.sentry import (
    init_sentry,
    is_expected_error,
    release_from_version_file,
    scrub,
)

EMAIL = "someone+trace-me-mozilla-1@example.com"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcGlfY2xpZW50OmlkX3gifQ.c2lnbmF0dXJl"
SECRET = "secret_AbCdEf0123456789_-xyz"


class RecordingTransport(Transport):
    """Keeps every event instead of sending it."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(dict(event))


class HTTPError(Exception):
    """Shaped like a framework HTTP exception."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


@pytest.fixture
def transport() -> Iterator[RecordingTransport]:
    recording = RecordingTransport()
    assert init_sentry(None, debug=False, release="v9.9.9", environment="test", transport=recording)
    try:
        yield recording
    finally:
        client = sentry_sdk.get_client()
        client.close()
        sentry_sdk.get_global_scope().set_client(None)


def raise_and_capture(exception: BaseException) -> None:
    try:
        raise exception
    except BaseException as error:
        sentry_sdk.capture_exception(error)


def test_unhandled_error_is_reported_once(transport: RecordingTransport) -> None:
    """A RuntimeError reaches Sentry once, with the release, even if also logged by the access log."""
    try:
        raise RuntimeError("Test exception")
    except RuntimeError as error:
        logging.getLogger("ctms.web").exception("GET /__crash__ 500")
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        sentry_sdk.capture_exception(error)
        sentry_sdk.capture_exception(error)

    (event,) = transport.events
    assert event["release"] == "v9.9.9"
    assert event["environment"] == "test"
    (value,) = event["exception"]["values"]
    assert (value["type"], value["value"]) == ("RuntimeError", "Test exception")


@pytest.mark.parametrize(
    "exception",
    [
        ContactNotFoundError(),
        ContactConflictError("Contact already exists", ["primary_email"]),
        CoreError("anything the core raises on purpose"),
        HTTPError(404),
        HTTPError(409),
        HTTPError(422),
        HTTPError(401),
    ],
    ids=lambda e: type(e).__name__ + getattr(e, "detail", str(getattr(e, "status_code", ""))),
)
def test_client_errors_are_never_reported(
    transport: RecordingTransport, exception: Exception
) -> None:
    """Core errors and HTTP exceptions below 500 are dropped before sending."""
    raise_and_capture(exception)
    assert transport.events == []


def test_server_http_errors_are_reported(transport: RecordingTransport) -> None:
    """An HTTP exception of 500 or more is not a client error."""
    raise_and_capture(HTTPError(503))
    assert len(transport.events) == 1


def test_addresses_tokens_and_secrets_are_scrubbed(transport: RecordingTransport) -> None:
    """Nothing identifying or secret survives, wherever it sits in the event."""
    with sentry_sdk.new_scope() as scope:
        scope.set_context(
            "request",
            {
                "headers": {
                    "Authorization": f"Bearer {TOKEN}",
                    "Cookie": "session=abc",
                    "Accept": "*/*",
                },
                "query_string": f"primary_email={EMAIL.replace('@', '%40')}&pubsub_client=shh-123",
            },
        )
        scope.set_extra("note", f"client credentials {SECRET} for {EMAIL}")
        raise_and_capture(RuntimeError(f"could not sync {EMAIL} with token {TOKEN}"))

    (event,) = transport.events
    text = json.dumps(event)
    for leaked in (EMAIL, "someone", TOKEN, SECRET, "session=abc", "shh-123", "example.com"):
        assert leaked not in text
    assert (
        event["exception"]["values"][0]["value"]
        == "could not sync [Filtered] with token [Filtered]"
    )
    headers = event["contexts"]["request"]["headers"]
    assert headers == {"Authorization": "[Filtered]", "Cookie": "[Filtered]", "Accept": "*/*"}


def test_no_local_variables_are_sent(transport: RecordingTransport) -> None:
    """Stack frames carry no `vars` (source context lines are fine: they hold code, not values)."""
    password = "".join(reversed("2retnuh"))  # a local value that must not leave
    try:
        raise RuntimeError(password[:0] + "failure")
    except RuntimeError as error:
        sentry_sdk.capture_exception(error)
    (event,) = transport.events
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames and all("vars" not in frame for frame in frames)
    assert "hunter2" not in json.dumps(event)


def test_error_logs_report_except_the_access_log_and_uvicorn(transport: RecordingTransport) -> None:
    """Logging integration: ERROR records become events, except on ctms.web and uvicorn.error."""
    logging.getLogger("ctms.web").error("access log line")
    logging.getLogger("uvicorn.error").error("server line")
    logging.getLogger("ctms.sync").error("Could not upload contact %s", EMAIL)
    (event,) = transport.events
    assert event["logger"] == "ctms.sync"
    assert EMAIL not in json.dumps(event)


def test_without_dsn_sentry_stays_off() -> None:
    """No DSN and no transport: nothing is initialised."""
    assert init_sentry(None, debug=False, release=None) is False
    assert init_sentry("", debug=True, release="x") is False
    assert not sentry_sdk.get_client().is_active()


def test_scrub_walks_nested_structures() -> None:
    """Lists, tuples, header pairs and nested dicts are scrubbed; other values kept."""
    assert scrub(
        {
            "a": [("authorization", "Basic dXNlcjpwYXNz"), ("accept", "json")],
            "b": ({"token": "t"}, 3, None),
            "c": "mail someone@example.org now",
            "d": {"password": None},
        }
    ) == {
        "a": [["authorization", "[Filtered]"], ["accept", "json"]],
        "b": [{"token": "[Filtered]"}, 3, None],
        "c": "mail [Filtered] now",
        "d": {"password": None},
    }


def test_expected_error_classification() -> None:
    """Core errors and < 500 HTTP errors are expected; the rest is not."""
    assert is_expected_error(ContactNotFoundError())
    assert is_expected_error(HTTPError(400))
    assert not is_expected_error(HTTPError(500))
    assert not is_expected_error(RuntimeError())


@pytest.mark.parametrize(
    ("content", "release"),
    [
        ('{"version": "v2.1.0", "commit": "abc123", "source": "x", "build": "y"}', "v2.1.0"),
        ('{"version": "", "commit": "abc123"}', "abc123"),
        ('{"commit": "abc123"}', "abc123"),
        ("{}", None),
        ("[]", None),
        ("not json", None),
    ],
)
def test_release_from_version_file(tmp_path: Path, content: str, release: str | None) -> None:
    """version.json `version`, else `commit`; None when unusable."""
    path = tmp_path / "version.json"
    path.write_text(content)
    assert release_from_version_file(path) == release


def test_release_from_missing_version_file(tmp_path: Path) -> None:
    """A missing version.json yields no release."""
    assert release_from_version_file(tmp_path / "absent.json") is None
