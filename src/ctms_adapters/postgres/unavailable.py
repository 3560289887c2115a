"""Telling "the database cannot be reached" apart from every other database error.

The HTTP layer answers 503 for any `OSError` (see `ctms_entrypoints.http.errors`) without knowing which
storage is behind the ports, so this adapter turns SQLAlchemy's and asyncpg's ways of saying it — a pool
timeout, a connection lost or refused, a server shutting down or full — into `DatabaseUnavailableError`,
a `ConnectionError`. Refused connections and connect timeouts already arrive as `OSError`; a statement
the database did not answer in time (asyncpg's `TimeoutError`, also an `OSError`) or cancelled by its
`statement_timeout` counts as unavailability too, so the connection it ran on is discarded.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import exc

# SQLSTATEs of a server that is going away or turning connections down: class 08 (connection exception),
# admin/crash shutdown, "cannot connect now" (starting up, recovering), too many connections; and of a
# statement cancelled by the server's `statement_timeout` (a database too slow to answer in time).
_UNAVAILABLE_CLASS = "08"
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "57014"})

Parameters = ParamSpec("Parameters")
Result = TypeVar("Result")
Class = TypeVar("Class", bound=type)


class DatabaseUnavailableError(ConnectionError):
    """The database cannot be reached right now; the request may succeed later (503)."""


def is_unavailability(error: BaseException) -> bool:
    """Whether `error` says the database is out of reach, rather than that a statement was wrong."""
    if isinstance(error, exc.TimeoutError):  # no pooled connection freed up in time
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    cause: BaseException | None = error.orig if isinstance(error, exc.DBAPIError) else error
    while cause is not None:
        # asyncpg's `command_timeout` (or a connect timeout): the database did not answer in time. The
        # connection may still be waiting for the answer, so it must be discarded, not reused.
        if isinstance(cause, TimeoutError):
            return True
        # What asyncpg raises when asked to use a connection that is already gone (SQLAlchemy's own
        # disconnect detection tests the same words).
        if type(cause).__module__.startswith("asyncpg") and "connection is closed" in str(cause):
            return True
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate.startswith(_UNAVAILABLE_CLASS) or sqlstate in _UNAVAILABLE_SQLSTATES
        ):
            return True
        cause = cause.__cause__
    return False


def reporting_unavailability(
    function: Callable[Parameters, Awaitable[Result]],
) -> Callable[Parameters, Awaitable[Result]]:
    @functools.wraps(function)
    async def call(*args: Parameters.args, **kwargs: Parameters.kwargs) -> Result:
        try:
            return await function(*args, **kwargs)
        except OSError:
            raise
        except Exception as error:
            if is_unavailability(error):
                raise DatabaseUnavailableError(f"database unavailable: {error}") from error
            raise

    return call


_ASYNC_CONTEXT = ("__aenter__", "__aexit__")


def reports_unavailability(cls: Class) -> Class:
    """Wrap every public coroutine method of `cls` (and `__aenter__`/`__aexit__`) with
    `reporting_unavailability`, so no entry point of an adapter forgets it."""
    for name, member in list(vars(cls).items()):
        if (not name.startswith("_") or name in _ASYNC_CONTEXT) and inspect.iscoroutinefunction(
            member
        ):
            wrapped: Any = reporting_unavailability(member)
            setattr(cls, name, wrapped)
    return cls
