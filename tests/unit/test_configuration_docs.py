"""docs/configuration.md documents every environment variable the settings read."""

from __future__ import annotations

from pathlib import Path

from ctms_entrypoints.settings import Settings

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOCUMENT.read_text()
    missing = [name for name in Settings.env_names().values() if f"`{name}`" not in text]
    assert missing == []
