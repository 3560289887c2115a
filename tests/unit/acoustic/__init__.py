"""Acoustic mapping, XML documents and the httpx gateway (MockTransport)."""
