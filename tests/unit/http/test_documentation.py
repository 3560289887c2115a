"""The OpenAPI document and the documentation pages, served without any CDN (docs/contract.md §10)."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs  # a dependency of schemathesis: validates instances against the document's schemas
import pytest

from ctms_core.domain.stripe import LINE_ITEM_TYPES, PRICE_INTERVALS
from tests.http_harness import Api, RunApi, make_settings
from tests.unit.stripe import payloads

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
    "/token": {"post"},
    "/stripe": {"post"},
    "/stripe_from_pubsub": {"post"},
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


async def test_schema_documents_every_route_but_the_crash_endpoint(
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
                "/token",
                "/stripe_from_pubsub",
            }
            assert (operation.get("security") == [{"HTTPBearer": []}]) is protected, (path, method)


async def test_token_takes_http_basic_or_form_credentials(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["HTTPBasic"]["scheme"] == "basic"
    operation = schema["paths"]["/token"]["post"]
    assert operation["security"] == [{"HTTPBasic": []}, {}]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert "#/components/schemas/TokenRequestSchema" in str(form)
    fields = schema["components"]["schemas"]["TokenRequestSchema"]
    assert set(fields["properties"]) >= {"grant_type", "client_id", "client_secret"}
    assert not fields.get("required")
    assert fields["properties"]["grant_type"]["pattern"] == "^(client_credentials|refresh_token)$"
    token = schema["components"]["schemas"]["TokenResponse"]
    assert set(token["required"]) == {"access_token", "token_type", "expires_in"}


async def test_pubsub_push_documents_its_google_token_and_secret(schema: dict[str, Any]) -> None:
    scheme = schema["components"]["securitySchemes"]["GoogleOIDC"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    operation = schema["paths"]["/stripe_from_pubsub"]["post"]
    assert operation["security"] == [{"GoogleOIDC": []}]
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
        ("pubsub_client", "query", True)
    ]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PushEnvelopeSchema"}
    accepted = schema["components"]["schemas"]["PushNotProcessed"]["properties"]["message"]
    assert len(accepted["enum"]) == 4


async def test_stripe_documents_the_objects_it_ingests(schema: dict[str, Any]) -> None:
    body = schema["paths"]["/stripe"]["post"]["requestBody"]["content"]["application/json"]
    variants = {ref["$ref"].rsplit("/", 1)[1] for ref in body["schema"]["oneOf"]}
    objects = {
        name: schema["components"]["schemas"][name]["properties"]["object"]["const"]
        for name in variants
    }
    assert sorted(objects.values()) == [
        "customer",
        "customer",
        "invoice",
        "price",
        "subscription",
        "subscription_item",
    ]


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/ctms/{email_id}", "get", {"200", "400", "401", "403", "404", "422", "503"}),
        ("/ctms", "post", {"200", "201", "400", "401", "403", "409", "413", "422", "503"}),
        ("/ctms/{email_id}", "put", {"201", "400", "401", "403", "409", "413", "422", "503"}),
        (
            "/ctms/{email_id}",
            "patch",
            {"200", "400", "401", "403", "404", "409", "413", "422", "503"},
        ),
        ("/ctms/{primary_email}", "delete", {"200", "400", "401", "403", "404", "422", "503"}),
        ("/__heartbeat__", "get", {"200", "503"}),
        ("/token", "post", {"200", "400", "401", "413", "422", "429", "503"}),
        ("/stripe", "post", {"200", "400", "401", "403", "409", "413", "503"}),
        ("/stripe_from_pubsub", "post", {"200", "202", "401", "404", "409", "413", "503"}),
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


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/ctms", "post", "201"),
        ("/ctms", "post", "200"),
        ("/ctms/{email_id}", "get", "200"),
        ("/ctms/{email_id}", "put", "201"),
        ("/ctms/{email_id}", "patch", "200"),
    ],
)
async def test_responses_with_a_contact_link_to_the_operations_on_it(
    schema: dict[str, Any], path: str, method: str, status: str
) -> None:
    links = schema["paths"][path][method]["responses"][status]["links"]
    operation_ids = {
        operation["operationId"]: (item_path, verb)
        for item_path, item in schema["paths"].items()
        for verb, operation in item.items()
    }
    for name, link in links.items():
        target_path, target_method = operation_ids[link["operationId"]]
        target = schema["paths"][target_path][target_method]
        declared = {f"{p['in']}.{p['name']}" for p in target.get("parameters", [])}
        assert set(link["parameters"]) <= declared, name
        for expression in link["parameters"].values():
            assert expression in {
                "$response.body#/email/email_id",
                "$response.body#/email/primary_email",
            }
    assert {link["operationId"] for link in links.values()} == {
        "read_ctms_by_email_id",
        "create_or_update_ctms_contact",
        "partial_update_ctms_contact",
        "read_ctms_by_any_id",
        "read_identity",
        "read_identities",
        "delete_contact_by_primary_email",
    }


async def test_api_client_series_are_preinitialised_for_bearer_operations_only(
    running_api: RunApi,
) -> None:
    """`/stripe` takes an API client's bearer token; `/token` (HTTP Basic or form) and the Pub/Sub push
    (a Google token) do not, so no `client_id` series is pre-initialised for them (docs/contract.md §11.5)."""
    async with running_api(make_settings()) as fresh:
        exposition = (await fresh.get("/metrics", headers={})).text
    api_series = [
        line for line in exposition.splitlines() if line.startswith("ctms_api_requests_total{")
    ]
    assert any('path_template="/stripe"' in line for line in api_series)
    assert not any('path_template="/token"' in line for line in api_series)
    assert not any('path_template="/stripe_from_pubsub"' in line for line in api_series)
    assert any(
        'path_template="/token"' in line and 'status_code="400"' in line
        for line in exposition.splitlines()
        if line.startswith("ctms_requests_total{")
    )


def _body_validator(schema: dict[str, Any], path: str) -> Any:
    """A JSON Schema validator for the JSON request body of `POST path`, its references resolved in
    the document."""
    body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return jsonschema_rs.Draft202012Validator({**body, "components": schema["components"]})


async def test_stripe_enumerations_are_the_ingesters_own(schema: dict[str, Any]) -> None:
    schemas = schema["components"]["schemas"]
    interval = schemas["StripeRecurringSchema"]["properties"]["interval"]["oneOf"][0]
    assert interval["enum"] == list(PRICE_INTERVALS)
    assert schemas["StripeLineItemSchema"]["properties"]["type"]["enum"] == list(LINE_ITEM_TYPES)


@pytest.mark.parametrize(
    "stripe_object",
    [
        payloads.customer(),
        payloads.deleted_customer(),
        payloads.subscription(),
        payloads.subscription_item(),
        payloads.price(),
        payloads.invoice(),
    ],
    ids=["customer", "deleted customer", "subscription", "subscription item", "price", "invoice"],
)
async def test_stripe_objects_ctms_ingests_match_the_documented_body(
    schema: dict[str, Any], stripe_object: dict[str, Any]
) -> None:
    errors = [
        error.message for error in _body_validator(schema, "/stripe").iter_errors(stripe_object)
    ]
    assert not errors


@pytest.mark.parametrize(
    "stripe_object",
    [
        {"object": "payment_method", "id": "pm_1"},
        {"email": "someone@example.com"},
        payloads.customer(created=0),
        payloads.customer(description=""),
        payloads.price(currency="EURO"),
        payloads.invoice(total=2**31),
        payloads.invoice(status="uncollectable"),
    ],
    ids=["other type", "no object", "time 0", "no fxa id", "currency", "total", "status"],
)
async def test_stripe_objects_ctms_refuses_do_not_match_the_documented_body(
    schema: dict[str, Any], stripe_object: dict[str, Any]
) -> None:
    assert not _body_validator(schema, "/stripe").is_valid(stripe_object)


async def test_the_pubsub_push_example_matches_the_documented_envelope(
    schema: dict[str, Any],
) -> None:
    """docs/contract.md §8.2's example push."""
    push = {
        "message": {
            "attributes": {"key": "value"},
            "data": "eyJmcm9tX2N1c3RvbWVyX3RhYmxlOjk5ZDI4Zjc4IjogeyJpZCI6ICJjdXNfLi4uIiwgIm9iamVj"
            "dCI6ICJjdXN0b21lciJ9fQ==",
            "messageId": "202111011704",
            "message_id": "202111011704",
            "publishTime": "2021-11-01T17:04:00+00:00",
            "publish_time": "2021-11-01T17:04:00+00:00",
        },
        "subscription": "projects/fxa/subscriptions/fxa-subscription",
    }
    validator = _body_validator(schema, "/stripe_from_pubsub")
    assert validator.is_valid(push)
    assert not validator.is_valid({"message": {"attributes": {}}, "subscription": "s"})
    assert not validator.is_valid({"message": {"data": "e30="}})
