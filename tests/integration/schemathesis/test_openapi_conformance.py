"""schemathesis against `/openapi.json` on PostgreSQL (docs/contract.md §16.3, issue #9).

For every operation the document declares, schemathesis generates valid (positive) and invalid
(negative) requests and checks each response: no 5xx, the status code and content type are declared for
the operation, and the body matches the declared schema. Findings are collected across all examples of
one operation and reported together (request and response), rather than stopping at the first.

Credentials, per operation:

* bearer operations get the live server's API token in place of the generated one, except negative
  cases that leave `Authorization` out on purpose (they expect a 401);
* `POST /token` is sent as generated (form fields and HTTP Basic), plus positive cases carrying the real
  client's credentials in the form or in HTTP Basic, which must get a token;
* `POST /stripe_from_pubsub` gets the right `pubsub_client` and a Google-like token signed with the key
  the server trusts, except negative cases that mutate the query or the headers (they expect a 401).
"""

from __future__ import annotations

import base64
import hashlib
import json
import platform
from importlib.metadata import version
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from ctms_entrypoints.container import build_container, memory_storage
from ctms_entrypoints.http import create_app
from tests.http_harness import make_settings
from tests.integration.schemathesis.conftest import PUBSUB_CLIENT, LiveServer, remove_request_data

EXAMPLES_PER_MODE = 25
REQUEST_TIMEOUT_SECONDS = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations of the document not fuzzed, and why: none. (`/__crash__`, which answers 500 on purpose for
# Sentry, is not in the document.)
NOT_FUZZED: dict[tuple[str, str], str] = {}
# Known findings, reported in issue #9; the test stays strict so a fix turns it green.
KNOWN_FINDINGS: dict[tuple[str, str], str] = {}
# Statuses some generated request must get, so the operation is fuzzed past its authentication.
MUST_SEE = {
    ("POST", "/token"): {200},
    ("POST", "/stripe"): {200},
    ("POST", "/stripe_from_pubsub"): {200, 202},
}
TOKEN = ("POST", "/token")
PUSH = ("POST", "/stripe_from_pubsub")


def _declared_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation of the OpenAPI document (from an app on memory storage)."""
    document = create_app(
        build_container(make_settings(), **memory_storage())
    ).openapi_schema.to_schema()
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "head", "post", "put", "patch", "delete"}
    )


def _param(method: str, path: str) -> Any:
    marks = []
    if (method, path) in NOT_FUZZED:
        marks.append(pytest.mark.skip(reason=NOT_FUZZED[(method, path)]))
    if (method, path) in KNOWN_FINDINGS:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FINDINGS[(method, path)]))
    return pytest.param(method, path, id=f"{method} {path}", marks=marks)


OPERATIONS = [_param(method, path) for method, path in _declared_operations()]


@pytest.fixture(scope="module")
def schema(live_server: LiveServer) -> schemathesis.BaseSchema:
    """The document as the running application serves it (the same whatever port it listens on)."""
    return schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json")


@pytest.fixture(scope="module")
def reproduction(schema: schemathesis.BaseSchema) -> str:
    """What the generated examples depend on besides this file: with `derandomize` they are the same on
    every run of the same document by the same library versions (the project pins none, so a fresh CI
    install may draw other examples than an older local environment)."""
    document = json.dumps(schema.raw_schema, sort_keys=True).encode()
    return (
        f"document sha256 {hashlib.sha256(document).hexdigest()[:16]}, Python "
        f"{platform.python_version()}, hypothesis {version('hypothesis')}, "
        f"schemathesis {version('schemathesis')}"
    )


def describe(case: schemathesis.Case, response: Any, failure: Failure) -> str:
    body = response.text if hasattr(response, "text") else ""
    return (
        f"{failure.title}: {failure.message.strip()[:600]}\n"
        f"    request: {case.as_curl_command(headers={'Authorization': 'Bearer ***'})}\n"
        f"    response: {response.status_code} {body[:400]!r}"
    )


def _form_credentials(live_server: LiveServer) -> Any:
    """A positive `/token` case made to carry the real credentials in its form."""

    def apply(case: schemathesis.Case) -> schemathesis.Case:
        form = dict(case.body) if isinstance(case.body, dict) else {}
        case.body = {
            **form,
            "client_id": live_server.client_id,
            "client_secret": live_server.client_secret,
        }
        return case

    return apply


def _basic_credentials(live_server: LiveServer) -> Any:
    """A positive `/token` case made to carry the real credentials in HTTP Basic (and not the form)."""

    def apply(case: schemathesis.Case) -> schemathesis.Case:
        form = dict(case.body) if isinstance(case.body, dict) else {}
        case.body = {k: v for k, v in form.items() if k not in {"client_id", "client_secret"}}
        case.headers = {**(case.headers or {}), **live_server.basic_auth}
        return case

    return apply


def _carrying(
    case: schemathesis.Case, stripe_object: Any, item_key: str | None
) -> schemathesis.Case:
    """A positive push case whose `message.data` is base64 of a Stripe object (the payload itself, or
    the only item of an item dictionary)."""
    payload = stripe_object if item_key is None else {item_key: stripe_object}
    envelope = dict(case.body) if isinstance(case.body, dict) else {"subscription": "s"}
    message = envelope.get("message")
    envelope["message"] = {
        **(message if isinstance(message, dict) else {}),
        "data": base64.b64encode(json.dumps(payload).encode()).decode(),
    }
    case.body = envelope
    return case


def _strategy(
    schema: schemathesis.BaseSchema, live_server: LiveServer, method: str, path: str
) -> Any:
    operation = schema[path][method]
    positive = operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
    negative = operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)
    if (method, path) == TOKEN:
        return st.one_of(
            positive,
            negative,
            positive.map(_form_credentials(live_server)),
            positive.map(_basic_credentials(live_server)),
        )
    if (method, path) == PUSH:
        # Random `data` is never base64 of JSON: also push the Stripe objects `/stripe` is fuzzed with.
        stripe_objects = (
            schema["/stripe"]["POST"]
            .as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
            .map(lambda case: case.body)
        )
        item_keys = st.none() | st.sampled_from(["customers:1", "subscriptions:2", "invoices:3"])
        pushes = st.builds(_carrying, positive, stripe_objects, item_keys)
        return st.one_of(positive, negative, pushes)
    return st.one_of(positive, negative)


def _credentials(
    case: schemathesis.Case, live_server: LiveServer, method: str, path: str
) -> dict[str, str] | None:
    """The headers that replace the generated credentials, None to send the case as generated."""
    negative = case.meta is not None and case.meta.generation.mode.is_negative
    if (method, path) == TOKEN:
        return None
    if (method, path) == PUSH:
        assert case.meta is not None
        if case.meta.is_negative_at(ParameterLocation.QUERY) or case.meta.is_negative_at(
            ParameterLocation.HEADER
        ):
            return None
        case.query = {**(case.query or {}), "pubsub_client": PUBSUB_CLIENT}
        return live_server.pubsub_auth
    # A negative case that left the Authorization header out on purpose expects a 401.
    if negative and "Authorization" not in (case.headers or {}):
        return None
    return live_server.auth


def _not_processed(response: Any) -> bool:
    """A push answered 202 "Accepted but not processed": how the endpoint refuses a body (Pub/Sub must
    not send it again), in place of a 4xx that Pub/Sub would retry."""
    if response.status_code != 202:
        return False
    body: Any = response.json()
    return isinstance(body, dict) and body.get("status") == "Accepted but not processed"


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_conforms_to_its_openapi_description(
    schema: schemathesis.BaseSchema,
    live_server: LiveServer,
    database_url: str,
    reproduction: str,
    method: str,
    path: str,
) -> None:
    remove_request_data(database_url)
    findings: dict[str, str] = {}
    statuses: set[int] = set()

    @settings(
        max_examples=2 * EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run (`reproduction`): findings stay strict xfails
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(schema, live_server, method, path))
    def run(case: schemathesis.Case) -> None:
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        response = case.call(
            base_url=live_server.base_url,
            headers=_credentials(case, live_server, method, path),
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        statuses.add(response.status_code)
        checks = list(CHECKS)
        if negative and not ((method, path) == PUSH and _not_processed(response)):
            checks.append(negative_data_rejection)
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                findings.setdefault(
                    f"{failure.title}|{response.status_code}", describe(case, response, failure)
                )
        except Failure as failure:
            findings.setdefault(
                f"{failure.title}|{response.status_code}", describe(case, response, failure)
            )

    run()
    assert not findings, f"{method} {path} ({reproduction}):\n" + "\n".join(findings.values())
    expected = MUST_SEE.get((method, path), set())
    assert not expected or statuses & expected, (
        f"{method} {path}: no response among {sorted(expected)}, got {sorted(statuses)}"
    )
