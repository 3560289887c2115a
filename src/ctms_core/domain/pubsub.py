"""Google Pub/Sub push envelopes (docs/contract.md §8.2) and the push endpoint's authentication errors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ctms_core.domain.errors import AuthenticationError, NotFoundError
from ctms_core.domain.json_documents import JsonDocumentError, decode_json_document

NOT_FROM_PUBSUB: Final = "Message does not appear to be from pubsub, do not send again."
UNKNOWN_PAYLOAD: Final = "Unknown payload type, do not send again."
PROCESSING_ERRORS: Final = "Errors processing the data, do not send again."
UNDECODABLE_DATA: Final = "Message data is not base64-encoded JSON, do not send again."
ACCEPTED_NOT_PROCESSED: Final = "Accepted but not processed"


class PushAuthenticationError(AuthenticationError):
    """401 `Could not validate credentials`; `reason` is the `auth_fail` log value of docs/contract.md §11.2, `claims` the
    verified token's claims when the failure came after verification (for the `pubsub_*` log fields)."""

    def __init__(self, reason: str, claims: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.claims = claims


class PushTokenRejected(PushAuthenticationError):
    def __init__(self, why: str) -> None:
        super().__init__("Unknown key")
        self.why = why


class PushVerificationUnavailable(PushAuthenticationError):
    def __init__(self, why: str) -> None:
        super().__init__("Google authentication failure")
        self.why = why


class PubSubNotConfiguredError(NotFoundError):
    """The push endpoint lacks a setting it needs: for this deployment it does not exist (404, the body
    of an unknown route; v3.3 failed with 500). `missing` names the settings."""

    detail = "Not Found"

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__()
        self.missing = missing


@dataclass(frozen=True, slots=True)
class Unprocessable:
    """A push CTMS accepts (202) but will never process: Pub/Sub must not send it again."""

    message: str


def decode_envelope(body: Any) -> list[tuple[str | None, Any]] | Unprocessable:
    """The Stripe objects of a push body, each with its item-dictionary key (None for a single object).

    * no `message`/`subscription` → not from Pub/Sub;
    * `message.data` not base64 of JSON, or of JSON CTMS refuses (`json_documents`) → undecodable (v3.3 answered 500, which Pub/Sub retries forever);
    * a JSON object whose every key holds exactly one `:` is an item dictionary (`{}` has no items); null
      or empty values are left out; any other object is a single Stripe object; anything else is unknown.
    """
    if not isinstance(body, Mapping) or "message" not in body or "subscription" not in body:
        return Unprocessable(NOT_FROM_PUBSUB)
    message = body["message"]
    data = message.get("data") if isinstance(message, Mapping) else None
    if not isinstance(data, str):
        return Unprocessable(UNDECODABLE_DATA)
    try:
        payload = decode_json_document(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError, JsonDocumentError):
        return Unprocessable(UNDECODABLE_DATA)
    if not isinstance(payload, dict):
        return Unprocessable(UNKNOWN_PAYLOAD)
    if all(key.count(":") == 1 for key in payload):
        return [(key, value) for key, value in payload.items()]
    return [(None, payload)]
