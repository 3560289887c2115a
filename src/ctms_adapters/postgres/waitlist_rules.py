"""`WaitlistFieldRuleRepository` on PostgreSQL: the `waitlist_field_rules` table (docs/waitlists.md)."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from ctms_adapters.postgres.tables import waitlist_field_rules
from ctms_adapters.postgres.transaction import TransactionScope
from ctms_adapters.postgres.unavailable import reports_unavailability
from ctms_core.domain.waitlist_rules import WaitlistFieldRule

_rules = waitlist_field_rules.c


@reports_unavailability
class PostgresWaitlistFieldRuleRepository:
    def __init__(self, scope: TransactionScope) -> None:
        self._scope = scope

    async def list(self) -> list[WaitlistFieldRule]:
        result = await self._scope.run(
            select(_rules.waitlist, _rules.field, _rules.max_length, _rules.required).order_by(
                _rules.waitlist, _rules.field
            )
        )
        return [
            WaitlistFieldRule(
                waitlist=row.waitlist,
                field=row.field,
                max_length=row.max_length,
                required=row.required,
            )
            for row in result
        ]

    async def set(self, rule: WaitlistFieldRule) -> None:
        await self._scope.begin()
        statement = insert(waitlist_field_rules).values(
            waitlist=rule.waitlist,
            field=rule.field,
            max_length=rule.max_length,
            required=rule.required,
        )
        await self._scope.run(
            statement.on_conflict_do_update(
                index_elements=[_rules.waitlist, _rules.field],
                set_={
                    "max_length": statement.excluded.max_length,
                    "required": statement.excluded.required,
                    "update_timestamp": func.now(),
                },
            )
        )

    async def remove(self, waitlist: str, field: str) -> bool:
        await self._scope.begin()
        result = await self._scope.run(
            delete(waitlist_field_rules)
            .where(_rules.waitlist == waitlist, _rules.field == field)
            .returning(_rules.field)
        )
        return result.first() is not None
