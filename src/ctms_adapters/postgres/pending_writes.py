"""The contact writes a unit of work holds back, and how they go out.

A unit's contact writes (`ContactWrite`: a new contact or a change, with its queue entry) are held until
the unit commits, and then sent as one statement (`contact_write.statement_for`) in one of three ways:

* the unit has no transaction open (it only read, without a lock): the statement goes out alone, in
  autocommit (atomic by itself), through the `WriteCoalescer`, which shares it with other units' writes;
  a POST and an optimistic PATCH commit in one round trip, no `BEGIN`, no `COMMIT`;
* the unit has a transaction open (a PUT read under the contact's lock, a delete): inside it, then
  `COMMIT`;
* the unit runs another statement first (a read of its own write, a second write to the same tables): the
  held writes go out before it, inside the transaction, which they open.

Writes join one statement only while they touch tables the held ones do not (every CTE of a statement
sees the same snapshot, not each other's effects), and a change's guard conditions only the steps that
come with it; otherwise the held writes go out first. An error of a held write surfaces from the call that
sent it (usually `commit()`), explained by the write's own `explain_failure`; a guard that refused raises
the guard's error (`ContactChangedError`).
"""

from __future__ import annotations

from sqlalchemy import exc

from ctms_adapters.postgres.coalescing import WriteCoalescer
from ctms_adapters.postgres.contact_write import (
    ContactWrite,
    is_guard,
    is_guarded,
    statement_for,
    table_of,
)
from ctms_adapters.postgres.transaction import TransactionScope


class PendingWrites:
    """The contact writes of one unit of work not sent yet (see the module)."""

    def __init__(self, scope: TransactionScope, write_coalescer: WriteCoalescer | None) -> None:
        self._scope = scope
        self._write_coalescer = write_coalescer
        self._writes: list[ContactWrite] = []

    async def add(self, write: ContactWrite) -> None:
        """Hold `write` until the commit, sending the held ones first if it cannot join them."""
        if self._writes and not self._joins(write):
            await self.send()
        self._writes.append(write)

    def clear(self) -> None:
        """Drop what was never sent (a unit rolled back or closed without committing)."""
        self._writes.clear()

    def _guarding(self) -> bool:
        return any(is_guard(step) for write in self._writes for step in write.steps)

    def _joins(self, write: ContactWrite) -> bool:
        # A guard conditions only what comes with it, so it joins nothing held; once one is held, only
        # guarded steps join it (anything else would be written whatever the guard says).
        if any(is_guard(step) for step in write.steps):
            return False
        if self._guarding() != all(is_guarded(step) for step in write.steps):
            return False
        tables = {table_of(step) for step in write.steps}
        for held in self._writes:
            if tables & {table_of(step) for step in held.steps}:
                return False
            shared = held.parameters.keys() & write.parameters.keys()
            if any(held.parameters[name] != write.parameters[name] for name in shared):
                return False
        return True

    async def send(self, *, last: bool = False) -> None:
        """Send the held writes as one statement: through the write coalescer (or alone) in autocommit
        when it is the `last` of a unit without a transaction, else inside the transaction, opening it."""
        if not self._writes:
            return
        writes, self._writes = self._writes, []
        steps: frozenset[str] = frozenset().union(*(write.steps for write in writes))
        parameters = {name: value for write in writes for name, value in write.parameters.items()}
        guard = next((write.guard for write in writes if write.guard is not None), None)
        scope = self._scope
        try:
            if not last or scope.in_transaction:
                async with scope.atomic():
                    rows = await scope.execute(statement_for(steps), parameters)
                passed = frozenset(row[0] for row in rows)
            elif self._write_coalescer is not None:
                passed = await self._write_coalescer.write(
                    steps, parameters, None if guard is None else guard.key
                )
            else:
                rows = await scope.execute(statement_for(steps), parameters)
                passed = frozenset(row[0] for row in rows)
        except exc.IntegrityError as error:
            for write in writes:
                if write.explain_failure is not None:
                    raise await write.explain_failure(error) from None
            raise
        if guard is not None and guard.key not in passed:
            raise guard.refused()
