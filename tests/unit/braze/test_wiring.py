"""`braze_destination_for`: the composition the container calls."""

from __future__ import annotations

import httpx
import pytest

from ctms_adapters.postgres import create_engine
from ctms_entrypoints.braze_wiring import braze_destination_for, braze_http_client


@pytest.mark.parametrize(
    ("url", "key", "missing"),
    [
        (None, "k", "CTMS_BRAZE_URL"),
        ("https://rest.example", "", "CTMS_BRAZE_API_KEY"),
        (None, None, "CTMS_BRAZE_URL, CTMS_BRAZE_API_KEY"),
    ],
)
async def test_a_missing_url_or_key_is_named(
    url: str | None, key: str | None, missing: str
) -> None:
    engine = create_engine(
        "postgresql://nobody@127.0.0.1:1/none",
        pool_size=1,
        max_overflow=0,
        pool_timeout=1,
        pool_recycle=-1,
        echo=False,
    )
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match=f"needs {missing}$"):
            braze_destination_for(client, engine, base_url=url, api_key=key)
        destination = braze_destination_for(
            client, engine, base_url="https://rest.example", api_key="k"
        )
    assert destination.name == "braze"
    await braze_http_client(4).aclose()
    await engine.dispose()
