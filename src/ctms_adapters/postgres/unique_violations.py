"""Recognising a unique violation behind SQLAlchemy's wrapping of asyncpg errors."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

UNIQUE_VIOLATION = "23505"


def unique_constraint_of(error: IntegrityError) -> str | None:
    """The name of the unique constraint or index `error` violated ("" when the driver did not say);
    None for any other integrity error (foreign key, NOT NULL, check)."""
    is_unique_violation = False
    # SQLAlchemy's adapted DBAPI error carries the SQLSTATE; the asyncpg error it wraps (its __cause__)
    # also carries the constraint name.
    cause: BaseException | None = error.orig
    while cause is not None:
        if getattr(cause, "sqlstate", None) == UNIQUE_VIOLATION:
            is_unique_violation = True
            name = getattr(cause, "constraint_name", None)
            if isinstance(name, str) and name:
                return name
        cause = cause.__cause__
    return "" if is_unique_violation else None
