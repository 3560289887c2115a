"""Acoustic Campaign adapter: OAuth refresh-token grant, XML API envelopes, `AcousticGateway` over httpx."""

from ctms_adapters.acoustic.gateway import (
    DEFAULT_SERVER_NUMBER,
    HttpxAcousticGateway,
    acoustic_base_url,
)
from ctms_adapters.acoustic.transport import SlotTransport

__all__ = ["DEFAULT_SERVER_NUMBER", "HttpxAcousticGateway", "SlotTransport", "acoustic_base_url"]
