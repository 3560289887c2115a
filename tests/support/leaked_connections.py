"""Finding asyncpg connections that a test dropped without closing.

asyncpg warns (`ResourceWarning`, "unclosed connection") when the garbage collector frees a connection
that is still open, and says where it was opened only in asyncio's debug mode. Whichever test happens to
trigger that collection fails under `filterwarnings = error`, usually not the one that leaked (three CI
runs failed a schemathesis test that way; the origin this module then reported was the reliability
tests' workers, which did not close their request slots). So the integration tests record where every
connection was opened
(`remember_where_connections_open`), collect the garbage after each module, and report what that finds
as a `LeakedConnectionWarning` naming the module that just ran and the connection's origin. The warning
is listed in pytest's summary, not raised (pyproject.toml's `filterwarnings`): it points at a leak to
fix without failing an unrelated test.
"""

from __future__ import annotations

import gc
import traceback
import warnings
from typing import Any

import asyncpg.connection

__all__ = [
    "LeakedConnectionWarning",
    "collect_leaked_connections",
    "remember_where_connections_open",
]

_FRAMES = 25


class LeakedConnectionWarning(UserWarning):
    """An asyncpg connection freed by the garbage collector while still open."""


def remember_where_connections_open() -> None:
    """Make every asyncpg connection keep the stack that opened it, as asyncio's debug mode would, so
    asyncpg's warning names it. Costs one stack walk per connection opened."""
    connection_class: Any = asyncpg.connection.Connection
    if getattr(connection_class, "_ctms_remembers_origin", False):
        return
    original_init = connection_class.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self._source_traceback is None:
            stack = traceback.extract_stack(limit=_FRAMES)[:-1]
            self._source_traceback = "".join(traceback.format_list(stack))

    connection_class.__init__ = init
    connection_class._ctms_remembers_origin = True


def collect_leaked_connections(after: str) -> None:
    """Collect the garbage now and report each open asyncpg connection it freed, as left by `after`
    (or by something before it whose garbage survived until now)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    for warning in caught:
        if issubclass(warning.category, ResourceWarning) and "unclosed connection" in str(
            warning.message
        ):
            warnings.warn(
                LeakedConnectionWarning(f"left by {after} or earlier: {warning.message}"),
                stacklevel=1,
            )
        else:  # anything else the collection raised counts as it always does
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
