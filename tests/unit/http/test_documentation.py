"""The OpenAPI document and the documentation pages, served without any CDN (SPEC §4 item 10)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.http_harness import Api

EXTERNAL_HOSTS = re.compile(r"cdn\.|jsdelivr|unpkg|googleapis|redoc\.ly|https?://", re.IGNORECASE)
ASSET_REFERENCE = re.compile(r"""(?:src|href)=["']([^"']+)["']""")

OPERATIONS = {
    "/__version__": {"get"},
    "/__heartbeat__": {"get", "head"},
    "/__lbheartbeat__": {"get", "head"},
    "/metrics": {"get"},
    "/ctms": {"get", "post"},
    "/ctms/{email_id}": {"get", "put", "patch"},
    "/ctms/{primary_email}": {"delete"},
    "/updates": {"get"},
    "/identities": {"get"},
    "/identity/{email_id}": {"get"},
    "/acoustic_configuration": {"get"},
}


@pytest.fixture
async def schema(api: Api) -> dict[str, Any]:
    response = await api.get("/openapi.json", headers={})
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_documentation_page_loads_only_local_assets_which_are_served(
    api: Api, page: str
) -> None:
    response = await api.get(page, headers={})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    head = response.text.split("<body", 1)[0]
    assert not EXTERNAL_HOSTS.search(head)
    assets = ASSET_REFERENCE.findall(response.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        served = await api.get(asset, headers={})
        assert served.status_code == 200, asset
        assert served.content


async def test_swagger_oauth2_redirect_page_is_served(api: Api) -> None:
    response = await api.get("/docs/oauth2-redirect", headers={})
    assert response.status_code == 200
    assert "oauth2" in response.text.lower()


async def test_schema_documents_every_route_and_hides_token_and_crash(
    schema: dict[str, Any],
) -> None:
    assert schema["info"]["title"] == "ConTact Management System (CTMS)"
    paths = {path: set(item) - {"parameters"} for path, item in schema["paths"].items()}
    assert paths == OPERATIONS


@pytest.mark.parametrize(
    ("path", "method", "body_schema"),
    [
        ("/ctms", "post", "ContactInSchema"),
        ("/ctms/{email_id}", "put", "ContactPutSchema"),
        ("/ctms/{email_id}", "patch", "ContactPatchSchema"),
    ],
)
async def test_write_operations_document_their_request_body(
    schema: dict[str, Any], path: str, method: str, body_schema: str
) -> None:
    body = schema["paths"][path][method]["requestBody"]
    content = body["content"]["application/json"]["schema"]
    assert f"#/components/schemas/{body_schema}" in str(content)
    assert body_schema in schema["components"]["schemas"]


async def test_protected_operations_use_the_bearer_scheme(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from `POST /token`",
    }
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            protected = not path.startswith("/__") and path not in {
                "/metrics",
                "/acoustic_configuration",
            }
            assert (operation.get("security") == [{"HTTPBearer": []}]) is protected, (path, method)


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/ctms/{email_id}", "get", {"200", "400", "401", "404", "422", "503"}),
        ("/ctms", "post", {"200", "201", "400", "401", "409", "413", "422", "503"}),
        ("/ctms/{email_id}", "put", {"201", "400", "401", "409", "413", "422", "503"}),
        ("/ctms/{email_id}", "patch", {"200", "400", "401", "404", "409", "413", "422", "503"}),
        ("/ctms/{primary_email}", "delete", {"200", "400", "401", "404", "422", "503"}),
        ("/__heartbeat__", "get", {"200", "503"}),
    ],
)
async def test_operations_document_their_responses(
    schema: dict[str, Any], path: str, method: str, statuses: set[str]
) -> None:
    assert set(schema["paths"][path][method]["responses"]) == statuses


async def test_single_contact_response_schema_lists_fields_in_wire_order(
    schema: dict[str, Any],
) -> None:
    single = schema["components"]["schemas"]["CTMSSingleResponse"]
    assert list(single["properties"]) == [
        "amo",
        "email",
        "fxa",
        "mofo",
        "newsletters",
        "waitlists",
        "vpn_waitlist",
        "relay_waitlist",
        "status",
    ]


async def test_updates_documents_start_as_required_and_the_rest_as_optional(
    schema: dict[str, Any],
) -> None:
    parameters = {p["name"]: p for p in schema["paths"]["/updates"]["get"]["parameters"]}
    assert set(parameters) == {"start", "end", "limit", "after", "mofo_relevant"}
    assert parameters["start"]["required"] is True
    assert not any(parameters[name]["required"] for name in ("end", "limit", "after"))
    # v3.3 takes an empty `limit` as the default 100, so the document says so rather than "integer"
    limit = parameters["limit"]["schema"]
    assert (limit["type"], limit["pattern"]) == ("string", "^(|[1-9][0-9]{0,2}|1000)$")


async def test_lookup_documents_the_nine_identifiers(schema: dict[str, Any]) -> None:
    parameters = [p["name"] for p in schema["paths"]["/ctms"]["get"]["parameters"]]
    assert parameters == [
        "email_id",
        "primary_email",
        "basket_token",
        "sfdc_id",
        "mofo_contact_id",
        "mofo_email_id",
        "amo_user_id",
        "fxa_id",
        "fxa_primary_email",
    ]
