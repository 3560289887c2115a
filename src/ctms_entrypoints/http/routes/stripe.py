"""`POST /stripe` (docs/contract.md §8.1) and `POST /stripe_from_pubsub` (docs/contract.md §8.2): Stripe objects in, `{"status": "OK"}`
out, with the `ingest_actions`, `fxa_id_conflict`, `trace`/`trace_json` and `pubsub_<claim>` log fields."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.response.base import ASGIResponse

from ctms_core.domain.errors import BadRequestError, NotAuthenticatedError
from ctms_core.domain.json_documents import (
    JsonDocumentError,
    RefusedJsonError,
    decode_json_document,
)
from ctms_core.domain.permissions import STRIPE_INGEST
from ctms_core.domain.pubsub import (
    ACCEPTED_NOT_PROCESSED,
    NOT_FROM_PUBSUB,
    PubSubNotConfiguredError,
    PushAuthenticationError,
)
from ctms_core.services.auth import AuthService
from ctms_core.services.pubsub import PubSubIngestService
from ctms_core.services.stripe import StripeIngestService
from ctms_entrypoints.http.context import log_fields, record_trace
from ctms_entrypoints.http.errors import ErrorDetail
from ctms_entrypoints.http.openapi import (
    BEARER,
    PRIVATE,
    PUBLIC,
    PUBSUB_BEARER,
    PushEnvelopeSchema,
    PushIngested,
    PushNotProcessed,
    PushOperation,
    StripeIngested,
    StripeObjectSchema,
    documented_body,
    responses,
)
from ctms_entrypoints.http.pipeline import pipeline
from ctms_entrypoints.http.responses import json_response
from ctms_entrypoints.observability.access_log import record_claims

AnyRequest = Request[Any, Any, Any]

logger = logging.getLogger("ctms.stripe")


class StripeBodyNotJsonError(BadRequestError):
    detail = "Request body is not valid JSON."


class StripeBodyRefusedError(BadRequestError):
    """JSON that breaks the input policy of `ctms_core.domain.json_documents` (too deep, ...)."""

    def __init__(self, error: RefusedJsonError) -> None:
        super().__init__(f"Request body is not usable JSON: {error.reason}.")


@dataclass(frozen=True, slots=True)
class StripeApi:
    auth: AuthService
    ingest: StripeIngestService[Any]
    pubsub: PubSubIngestService


# A write conflict on Stripe rows is the plain v3.3 body, without the contacts' `conflicts`.
_WRITE_CONFLICT = (
    ErrorDetail,
    "`Write conflict, try again` or `Deadlock or other issue, try again`: a concurrent write; "
    "objects committed before it stay",
)


@post(
    "/stripe",
    status_code=200,
    tags=PUBLIC,
    summary="Add or update Stripe data",
    operation_id="stripe",
    security=BEARER,
    dependencies=documented_body(StripeObjectSchema),
    responses=responses(
        {
            200: (StripeIngested, "Ingested; the customer's contact is queued for sync"),
            400: (
                ErrorDetail,
                "The API client is disabled; the body is not JSON, not a Stripe object, an "
                "unsupported object type, or lacks data CTMS needs",
            ),
            409: _WRITE_CONFLICT,
        },
        401,
        403,
        413,
        503,
    ),
)
@pipeline((STRIPE_INGEST,), auth="stripe_api.auth")
async def stripe(request: AnyRequest, stripe_api: NamedDependency[StripeApi]) -> ASGIResponse:
    """Ingest one Stripe object (bearer, `stripe:ingest`)."""
    # Decoded after authentication: a Stripe body problem is a 400 (docs/contract.md §8.1).
    try:
        data = decode_json_document(await request.body())
    except RefusedJsonError as error:
        raise StripeBodyRefusedError(error) from None
    except JsonDocumentError:
        raise StripeBodyNotJsonError() from None
    result = await stripe_api.ingest.ingest(data)
    fields = log_fields(request)
    fields["ingest_actions"] = result.actions
    if result.fxa_id_conflict is not None:
        fields["fxa_id_conflict"] = result.fxa_id_conflict
    if result.customer_email:
        record_trace(request, [result.customer_email], body=data, with_body=True)
    return json_response({"status": "OK"})


@post(
    "/stripe_from_pubsub",
    status_code=200,
    tags=PRIVATE,
    summary="Add or update Stripe data from PubSub",
    operation_id="stripe_pubsub",
    security=PUBSUB_BEARER,
    operation_class=PushOperation,
    dependencies=documented_body(PushEnvelopeSchema),
    responses=responses(
        {
            200: (PushIngested, "Every Stripe object of the push ingested (or skipped)"),
            202: (PushNotProcessed, "Accepted, not processed: Pub/Sub must not send it again"),
            401: (
                ErrorDetail,
                "No bearer token, a wrong `pubsub_client`, or a token that is not the configured "
                "Google service account's",
            ),
            404: (
                ErrorDetail,
                "`Not Found`: Pub/Sub push is not configured for this deployment (a setting is "
                "missing), answered as for a route that does not exist",
            ),
            409: _WRITE_CONFLICT,
        },
        413,
        503,
    ),
)
async def stripe_from_pubsub(
    request: AnyRequest,
    stripe_api: NamedDependency[StripeApi],
) -> ASGIResponse:
    """A Google Pub/Sub push of Stripe objects (see `PubSubIngestService`)."""
    fields = log_fields(request)
    try:
        stripe_api.pubsub.ensure_configured()
    except PubSubNotConfiguredError as error:
        # Switched off for this deployment: the 404 of an unknown route, before anything else.
        fields["pubsub_config_error"] = ", ".join(error.missing) + " unset"
        raise
    pubsub_client = request.query_params.get("pubsub_client")
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticatedError
    fields["client_allowed"] = False
    try:
        claims = await stripe_api.pubsub.authenticate(pubsub_client, token)
    except PushAuthenticationError as error:
        fields["auth_fail"] = error.reason
        if error.claims is not None:
            record_claims(fields, "pubsub_", error.claims)
        raise
    record_claims(fields, "pubsub_", claims)
    fields["client_allowed"] = True

    try:
        body = decode_json_document(await request.body())
    except JsonDocumentError:
        body = None  # not a Pub/Sub envelope: accepted, never to be sent again
    outcome = await stripe_api.pubsub.process(body)
    if outcome.actions:
        fields["ingest_actions"] = outcome.ingest_actions()
    if outcome.fxa_id_conflicts:
        fields["fxa_id_conflict"] = ",".join(sorted(outcome.fxa_id_conflicts))
    if outcome.errors:
        fields["ingest_errors"] = [f"{label}: {error}" for label, error in outcome.errors]
    for key in outcome.empty_keys:
        logger.warning("PubSub key %s had empty value", key)
    if outcome.traced_emails:
        record_trace(request, outcome.traced_emails, body=body, with_body=True)
    if outcome.unprocessable is not None:
        return json_response(
            {"status": ACCEPTED_NOT_PROCESSED, "message": outcome.unprocessable}, status_code=202
        )
    return json_response({"status": "OK", "count": outcome.count})


STRIPE_ROUTES = [stripe, stripe_from_pubsub]

__all__ = ["NOT_FROM_PUBSUB", "STRIPE_ROUTES", "StripeApi"]
