"""The Pub/Sub push endpoint's use cases (docs/contract.md §8.2): authenticate a push, then ingest
the Stripe objects it carries, one transaction per object."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ctms_core.domain.errors import BadRequestError
from ctms_core.domain.pubsub import (
    PROCESSING_ERRORS,
    PubSubNotConfiguredError,
    PushAuthenticationError,
    Unprocessable,
    decode_envelope,
)
from ctms_core.domain.stripe import UnknownStripeObject, object_type_and_id
from ctms_core.ports.pubsub import PushTokenVerifier
from ctms_core.services.stripe import StripeIngestService

_GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})


@dataclass(frozen=True, slots=True)
class PushSettings:
    """`client` is the `?pubsub_client=` secret, `audience` the expected `aud`, `email` the service
    account Pub/Sub signs as. None = unset."""

    client: str | None
    audience: str | None
    email: str | None


@dataclass(slots=True)
class PushOutcome:
    """What one push did. `unprocessable` set → 202 with that message; else 200 with `count`."""

    count: int = 0
    unprocessable: str | None = None
    actions: dict[str, set[str]] = field(default_factory=dict)
    fxa_id_conflicts: set[str] = field(default_factory=set)
    traced_emails: set[str] = field(default_factory=set)
    email_ids: set[uuid.UUID] = field(default_factory=set)
    #: `(item key or object label, error)` of each item that failed, for the logs.
    errors: list[tuple[str, Exception]] = field(default_factory=list)
    #: Item-dictionary keys whose value was null or empty (logged as warnings).
    empty_keys: list[str] = field(default_factory=list)

    def record(self, action: str, labels: list[str]) -> None:
        self.actions.setdefault(action, set()).update(labels)

    def ingest_actions(self) -> dict[str, list[str]]:
        """The merged `ingest_actions` log field (docs/contract.md §8.4): sorted keys, sorted values."""
        return {action: sorted(self.actions[action]) for action in sorted(self.actions)}


class PubSubIngestService:
    """Business rules:

    * Without every setting the endpoint does not exist for the deployment (`PubSubNotConfiguredError`,
      checked before anything else: a feature switched off is not an outage).
    * Authentication: the
      `pubsub_client` secret must match (compared in constant time) before the token is even looked at
      ("Verification mismatch"); the token must verify ("Unknown key" / "Google authentication failure"),
      come from Google's issuer, carry the configured `email` ("Wrong email") and `email_verified` true
      ("Email not verified").
    * A push that is not a Pub/Sub envelope, whose data is not base64 JSON, or whose payload is not an
      object is accepted (202) and never processed: Pub/Sub must not send it again.
    * Each object is ingested in its own transaction: a write conflict stops the push (409, earlier
      objects stay committed; Pub/Sub redelivers and the replay reports `no_change`); an unknown object
      type is `skipped` and not counted; an invalid object is reported and makes the push a 202 "do not
      send again" once every other object is processed.
    """

    def __init__(
        self,
        ingest: StripeIngestService[Any],
        verifier: PushTokenVerifier,
        settings: PushSettings,
    ) -> None:
        self._ingest = ingest
        self._verifier = verifier
        self._settings = settings

    def ensure_configured(self) -> None:
        """Raise `PubSubNotConfiguredError` when a setting the endpoint needs is missing."""
        settings = self._settings
        missing = tuple(
            name
            for name, value in (
                ("CTMS_PUBSUB_AUDIENCE", settings.audience),
                ("CTMS_PUBSUB_EMAIL", settings.email),
                ("CTMS_PUBSUB_CLIENT", settings.client),
            )
            if not value
        )
        if missing:
            raise PubSubNotConfiguredError(missing)

    async def authenticate(self, pubsub_client: str | None, token: str) -> Mapping[str, Any]:
        """The token's claims, or a `PushAuthenticationError` whose `reason` is the log's `auth_fail`.
        Claims are attached to the error as `claims` once known, for the `pubsub_*` log fields."""
        self.ensure_configured()
        settings = self._settings
        assert settings.client
        assert settings.audience
        if pubsub_client is None or not hmac.compare_digest(
            pubsub_client.encode(), settings.client.encode()
        ):
            raise PushAuthenticationError("Verification mismatch")
        claims = await self._verifier.verify(token, audience=settings.audience)
        failure: str | None = None
        if claims.get("iss") not in _GOOGLE_ISSUERS:
            failure = "Unknown key"
        elif claims.get("email") != settings.email:
            failure = "Wrong email"
        elif claims.get("email_verified") is not True:
            failure = "Email not verified"
        if failure is not None:
            raise PushAuthenticationError(failure, claims)
        return claims

    async def process(self, body: Any) -> PushOutcome:
        """Ingest every object of the push. Raises `WriteConflictError` (409) at the first conflict."""
        outcome = PushOutcome()
        items = decode_envelope(body)
        if isinstance(items, Unprocessable):
            outcome.unprocessable = items.message
            return outcome
        for key, data in items:
            if key is not None and not data:
                outcome.empty_keys.append(key)
                continue
            await self._process_one(key, data, outcome)
        if outcome.errors:
            outcome.unprocessable = PROCESSING_ERRORS
        return outcome

    async def _process_one(self, key: str | None, data: Any, outcome: PushOutcome) -> None:
        try:
            result = await self._ingest.ingest(data)
        except UnknownStripeObject as unknown:
            outcome.record("skipped", [unknown.label])
            return
        except BadRequestError as error:
            label = key
            if label is None:
                try:
                    object_type, stripe_id = object_type_and_id(data)
                    label = f"{object_type}:{stripe_id}"
                except BadRequestError:
                    label = "payload"
            outcome.errors.append((label, error))
            return
        for action, labels in result.actions.items():
            outcome.record(action, labels)
        if result.fxa_id_conflict is not None:
            outcome.fxa_id_conflicts.add(result.fxa_id_conflict)
        if result.customer_email:
            outcome.traced_emails.add(result.customer_email)
        outcome.email_ids.update(result.email_ids)
        outcome.count += 1
