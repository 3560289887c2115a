"""Braze adapter: `BrazeGateway` over httpx, speaking Braze's REST API (docs/braze.md)."""

from ctms_adapters.braze.gateway import HttpxBrazeGateway, safe_reason

__all__ = ["HttpxBrazeGateway", "safe_reason"]
