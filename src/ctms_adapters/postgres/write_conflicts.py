"""Turning the database errors a retry can cure into the core's 409 errors (docs/contract.md §2.6).

An integrity error (a concurrent transaction inserted the same key first) becomes `WriteConflictError`
("Write conflict, try again"); a deadlock, serialization failure or lock timeout becomes
`TransientWriteError` ("Deadlock or other issue, try again"). Anything else passes through unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import exc

from ctms_core.domain.errors import TransientWriteError, WriteConflictError

_INTEGRITY_CLASS = "23"
# serialization_failure, deadlock_detected, lock_not_available, transaction_rollback
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "40000"})

Parameters = ParamSpec("Parameters")
Result = TypeVar("Result")
Class = TypeVar("Class", bound=type)


def sqlstate_of(error: BaseException) -> str | None:
    """The SQLSTATE behind SQLAlchemy's wrapping of an asyncpg error, if any."""
    cause: BaseException | None = error.orig if isinstance(error, exc.DBAPIError) else error
    while cause is not None:
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate
        cause = cause.__cause__
    return None


def write_conflict_of(error: BaseException) -> WriteConflictError | None:
    """The core error for `error`, or None when a retry would not help."""
    if not isinstance(error, exc.DBAPIError):
        return None
    sqlstate = sqlstate_of(error)
    if sqlstate is None:
        return None
    if sqlstate in _TRANSIENT_SQLSTATES:
        return TransientWriteError()
    if sqlstate.startswith(_INTEGRITY_CLASS):
        return WriteConflictError()
    return None


def reporting_write_conflicts(
    function: Callable[Parameters, Awaitable[Result]],
) -> Callable[Parameters, Awaitable[Result]]:
    @functools.wraps(function)
    async def call(*args: Parameters.args, **kwargs: Parameters.kwargs) -> Result:
        try:
            return await function(*args, **kwargs)
        except exc.DBAPIError as error:
            conflict = write_conflict_of(error)
            if conflict is None:
                raise
            raise conflict from error

    return call


def reports_write_conflicts(cls: Class) -> Class:
    """Wrap every public coroutine method of `cls` with `reporting_write_conflicts`."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            wrapped: Any = reporting_write_conflicts(member)
            setattr(cls, name, wrapped)
    return cls
