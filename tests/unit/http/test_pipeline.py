"""The request pipeline's declaration (`ctms_entrypoints.http.pipeline`): what Litestar sees of a handler,
and the mistakes a route declaration cannot make. Its run-time order (which error wins) is pinned by the
HTTP tests of each route (tests/unit/http/test_authentication.py, test_permissions.py, ...)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from ctms_core.domain.api_client import ApiClient
from ctms_entrypoints.http.pipeline import pipeline
from ctms_entrypoints.http.requests import RequestJson


async def _write(client: ApiClient, body: RequestJson, email_id: str, contacts_api: Any) -> str:
    """Documented."""
    return email_id


def test_litestar_sees_the_request_and_the_handlers_own_parameters_only() -> None:
    admitted = pipeline(("contacts:write",), body=True)(_write)

    assert list(inspect.signature(admitted).parameters) == ["request", "email_id", "contacts_api"]
    assert set(admitted.__annotations__) == {"request", "email_id", "contacts_api", "return"}
    assert (admitted.__name__, admitted.__doc__) == ("_write", "Documented.")


def test_a_handler_must_declare_the_dependency_that_authenticates() -> None:
    async def anonymous(email_id: str) -> str:
        return email_id

    with pytest.raises(TypeError, match="contacts_api"):
        pipeline(("contacts:read",))(anonymous)


def test_a_handler_taking_a_body_needs_a_pipeline_that_decodes_one() -> None:
    with pytest.raises(TypeError, match="body"):
        pipeline(("contacts:write",))(_write)
