"""Logging adapter: structlog configuration, the MozLog renderer, and access-log redaction (docs/contract.md §11)."""

from ctms_adapters.logging.config import configure_logging, log_event
from ctms_adapters.logging.mozlog import ENV_VERSION, LOGGER_NAME, MozLogRenderer, syslog_severity
from ctms_adapters.logging.redaction import (
    OMITTED,
    is_traced,
    loggable,
    redact_addresses,
    redact_headers,
    redact_path,
    redact_path_value,
    redact_query,
    traced_addresses,
)

__all__ = [
    "ENV_VERSION",
    "LOGGER_NAME",
    "OMITTED",
    "MozLogRenderer",
    "configure_logging",
    "is_traced",
    "log_event",
    "loggable",
    "redact_addresses",
    "redact_headers",
    "redact_path",
    "redact_path_value",
    "redact_query",
    "syslog_severity",
    "traced_addresses",
]
