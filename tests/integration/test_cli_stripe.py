"""`ctms ingest-stripe FILE...` against a real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.test_cli import Ctms, ctms  # noqa: F401 - the fixture
from tests.unit.stripe.payloads import customer, subscription

pytestmark = pytest.mark.integration


async def test_ingest_stripe_reports_progress_and_a_summary(
    ctms: Ctms,  # noqa: F811
    empty_database: AsyncEngine,
    tmp_path: Path,
) -> None:
    single = tmp_path / "customer.json"
    single.write_text(json.dumps(customer()))
    many = tmp_path / "many.json"
    many.write_text(
        json.dumps(
            [
                subscription(),
                None,
                {"object": "payment_method", "id": "pm_1"},
                customer(id="cus_bad", created="yesterday"),
            ]
        )
    )
    result = await ctms("ingest-stripe", str(single), str(many))
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == (
        "Ingested 2 objects: created 4, updated 0, no_change 0, deleted 0; skipped 2; failed 1."
    )
    async with empty_database.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM stripe_customer")) == 1
        assert await connection.scalar(text("SELECT count(*) FROM stripe_subscription")) == 1

    again = await ctms("ingest-stripe", str(single))
    assert again.exit_code == 0, again.output
    assert again.output.strip().splitlines()[-1] == (
        "Ingested 1 objects: created 0, updated 0, no_change 1, deleted 0; skipped 0; failed 0."
    )
