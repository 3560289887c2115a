"""The errors of the core, one class per outcome a caller must tell apart.

Each error carries the `detail` the v3.3 contract shows to clients (docs/contract.md §2.6), so every driving adapter renders
the same words; the HTTP layer only maps classes to status codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Location = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input value: where it is (`loc`), what is wrong (`msg`) and a stable `type` code."""

    loc: Location
    msg: str
    type: str


class CoreError(Exception):
    """Base of every error the core raises on purpose."""

    detail: str = "Error"

    def __init__(self, detail: str | None = None) -> None:
        if detail is not None:
            self.detail = detail
        super().__init__(self.detail)


class NotFoundError(CoreError):
    """The thing asked for does not exist."""


class ContactNotFoundError(NotFoundError):
    detail = "Unknown email_id"


class EmailNotFoundError(NotFoundError):
    def __init__(self, primary_email: str) -> None:
        super().__init__(f"email {primary_email} not found!")


class ContactConflictError(CoreError):
    """A unique identifier of the contact is already used by another contact.

    `fields` names every clashing unique field (`primary_email`, `basket_token`, `fxa_id`, `mofo_email_id`,
    `email_id`), so clients can tell which identifier collided (docs/contract.md §14.3).
    """

    def __init__(self, detail: str, fields: Sequence[str]) -> None:
        super().__init__(detail)
        self.fields = tuple(fields)


class UniqueConstraintViolation(Exception):
    """Raised by repositories when a write breaks a uniqueness rule; the use case turns it into a 409."""

    def __init__(self, fields: Sequence[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = tuple(fields)


class ContactChangedError(Exception):
    """Raised by a repository when a contact the unit of work read without a lock changed before its save
    was written (from `save` or the unit's `commit()`): nothing of the save was written, and the use case
    starts over from a fresh read."""


class ValidationFailedError(CoreError):
    """The input is malformed; `errors` lists every offending value with its location."""

    detail = "Validation failed"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__(errors[0].msg if errors else self.detail)
        self.errors = tuple(errors)


class UnprocessableRequestError(CoreError):
    """Well-formed input the use case refuses as a whole (422 with a plain `detail` string)."""


class BadRequestError(CoreError):
    """A request that cannot be served as asked (400)."""


class MissingIdentifiersError(BadRequestError):
    detail = (
        "No identifiers provided, at least one is needed: email_id, primary_email, basket_token, "
        "sfdc_id, mofo_contact_id, mofo_email_id, amo_user_id, fxa_id, fxa_primary_email"
    )


class AuthenticationError(CoreError):
    """Bearer credentials are missing or invalid (401). `reason` goes to the access log (`auth_fail`)."""

    detail = "Could not validate credentials"

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason


class NotAuthenticatedError(AuthenticationError):
    detail = "Not authenticated"

    def __init__(self) -> None:
        super().__init__("No or bad token")


class ClientDisabledError(CoreError):
    """The API client exists but is disabled: 400 as in v3.3 (docs/contract.md §2.2)."""

    detail = "API Client has been disabled"
    reason = "Client disabled"


class TokenRequestRejectedError(CoreError):
    """`POST /token` refused the credentials (400). `reason` goes to the log as `token_fail`."""

    detail = "Incorrect username or password"

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class PermissionDeniedError(CoreError):
    """The authenticated client lacks a permission the operation needs (403)."""

    def __init__(self, required: Sequence[str]) -> None:
        super().__init__("Permission(s) required: " + ", ".join(required))
        self.required = tuple(required)


class PreconditionFailedError(CoreError):
    """The operation conflicts with what is stored: a duplicate, or something still in use that must be
    released first (`detail` says how). The CLI exits with 10."""


class WriteConflictError(CoreError):
    """A concurrent transaction wrote the same rows first (an integrity error at write or commit): the
    client may simply retry (409, docs/contract.md §2.6)."""

    detail = "Write conflict, try again"


class TransientWriteError(WriteConflictError):
    """The database aborted the transaction (deadlock, serialization failure, lock timeout): retry (409)."""

    detail = "Deadlock or other issue, try again"
