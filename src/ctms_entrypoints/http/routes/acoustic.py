"""`GET /acoustic_configuration` (docs/contract.md §10): what the sync sends, as the `acoustic_*` tables hold it."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.response.base import ASGIResponse

from ctms_core.services.acoustic_admin import AcousticAdminService
from ctms_entrypoints.http.openapi import PLATFORM, responses
from ctms_entrypoints.http.responses import AcousticConfigurationResponse, json_response


@get(
    "/acoustic_configuration",
    tags=PLATFORM,
    summary="The Acoustic sync configuration: fields and newsletter mappings",
    operation_id="acoustic_configuration",
    responses=responses({200: (AcousticConfigurationResponse, "The configuration")}),
)
async def acoustic_configuration(
    acoustic_admin: NamedDependency[AcousticAdminService],
) -> ASGIResponse:
    fields = await acoustic_admin.fields()
    mappings = await acoustic_admin.newsletter_mappings()
    sync_fields: dict[str, list[str]] = {}
    for tablename, field in fields:  # sorted by table, then field
        sync_fields.setdefault(tablename, []).append(field)
    return json_response(
        AcousticConfigurationResponse(sync_fields=sync_fields, newsletter_mappings=dict(mappings))
    )


ACOUSTIC_ROUTES = [acoustic_configuration]
