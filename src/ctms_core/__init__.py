"""CTMS domain core: pure contact rules and use cases (stdlib + msgspec only)."""
