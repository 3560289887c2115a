"""schemathesis against `/openapi.json` on PostgreSQL (SPEC §9 "Reliability", issue #9).

For every operation the document declares, schemathesis generates valid (positive) and invalid
(negative) requests, sent with a valid bearer token, and checks each response: no 5xx, the status code
and content type are declared for the operation, and the body matches the declared schema. Findings are
collected across all examples of one operation and reported together (request and response), rather
than stopping at the first.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from ctms_entrypoints.container import build_container, memory_storage
from ctms_entrypoints.http import create_app
from tests.http_harness import make_settings
from tests.integration.schemathesis.conftest import LiveServer

EXAMPLES_PER_MODE = 25
REQUEST_TIMEOUT_SECONDS = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations not fuzzed, and why.
NOT_FUZZED = {
    ("GET", "/__crash__"): "answers 500 on purpose (Sentry test endpoint)",
    ("HEAD", "/__crash__"): "answers 500 on purpose (Sentry test endpoint)",
}
# Known findings, reported in issue #9; the test stays strict so a fix turns it green.
KNOWN_FINDINGS: dict[tuple[str, str], str] = {}


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
    """The document as the running application serves it."""
    return schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json")


def _describe(case: schemathesis.Case, response: Any, failure: Failure) -> str:
    body = response.text if hasattr(response, "text") else ""
    return (
        f"{failure.title}: {failure.message.strip()[:600]}\n"
        f"    request: {case.as_curl_command(headers={'Authorization': 'Bearer ***'})}\n"
        f"    response: {response.status_code} {body[:400]!r}"
    )


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_conforms_to_its_openapi_description(
    schema: schemathesis.BaseSchema, live_server: LiveServer, method: str, path: str
) -> None:
    operation = schema[path][method]
    findings: dict[str, str] = {}

    strategy = st.one_of(
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=2 * EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run: known findings stay strict xfails
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        # A valid token replaces the generated credentials, except when a negative case left the
        # Authorization header out on purpose (it then expects a 401).
        authenticated = not negative or "Authorization" in (case.headers or {})
        response = case.call(
            base_url=live_server.base_url,
            headers=live_server.auth if authenticated else None,
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        checks = [*CHECKS, *([negative_data_rejection] if negative else [])]
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                findings.setdefault(
                    f"{failure.title}|{response.status_code}", _describe(case, response, failure)
                )
        except Failure as failure:
            findings.setdefault(
                f"{failure.title}|{response.status_code}", _describe(case, response, failure)
            )

    run()
    assert not findings, f"{method} {path}:\n" + "\n".join(findings.values())
