"""Observability wiring of the API process: the access-log + metrics ASGI middleware, the metrics
instruments and exposition, and Sentry (docs/contract.md §11)."""
