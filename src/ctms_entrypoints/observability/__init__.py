"""Observability wiring of the API process: the access-log + metrics ASGI middleware, the metrics
instruments and exposition, and Sentry (R§7, R§8)."""
