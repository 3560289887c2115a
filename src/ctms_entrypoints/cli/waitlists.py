"""`ctms waitlists rules list|set|remove`: the waitlist field rules (docs/waitlists.md)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from ctms_core.domain.waitlist_rules import ANY_OTHER_WAITLIST, WaitlistFieldRule
from ctms_core.services.waitlist_rules import WaitlistRulesAdminService
from ctms_entrypoints.cli.context import CliContext, pass_ctms
from ctms_entrypoints.container import Container

T = TypeVar("T")

_EFFECT = (
    "API processes enforce it within CTMS_WAITLIST_RULES_CACHE_SECONDS; stored contacts are not "
    "checked."
)


def _admin_service(
    ctms: CliContext, work: Callable[[WaitlistRulesAdminService], Awaitable[T]]
) -> T:
    """`ctms.admin` with the waitlist rules administration service."""

    async def run(container: Container) -> T:
        return await work(container.waitlist_rules_admin_service())

    return ctms.admin(run)


@click.group("waitlists")
def waitlists() -> None:
    """Waitlists."""


@waitlists.group("rules")
def rules() -> None:
    """The rules of waitlist `fields`: allowed keys, their maximum length, required or not. A waitlist
    with rules accepts only its ruled keys; `*` holds the rules of every other waitlist."""


def _rule_document(rule: WaitlistFieldRule) -> dict[str, Any]:
    return {
        "waitlist": rule.waitlist,
        "field": rule.field,
        "max_length": rule.max_length,
        "required": rule.required,
    }


@rules.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_ctms
def rules_list(ctms: CliContext, as_json: bool) -> None:
    """List the rules, by waitlist and field."""

    async def work(service: WaitlistRulesAdminService) -> list[WaitlistFieldRule]:
        return await service.list()

    listed = _admin_service(ctms, work)
    if as_json:
        click.echo(json.dumps([_rule_document(rule) for rule in listed]))
        return
    if not listed:
        click.echo("No waitlist field rules: every waitlist accepts any key.")
        return
    header = ("WAITLIST", "FIELD", "MAX LENGTH", "REQUIRED")
    rows = [
        (rule.waitlist, rule.field, str(rule.max_length), "yes" if rule.required else "no")
        for rule in listed
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if any(rule.waitlist == ANY_OTHER_WAITLIST for rule in listed):
        click.echo(f"({ANY_OTHER_WAITLIST} = every waitlist without rules of its own)")


@rules.command("set")
@click.argument("waitlist")
@click.argument("field")
@click.option(
    "--max-length", type=int, required=True, help="Longest value, in characters (at least 1)."
)
@click.option(
    "--required/--optional",
    default=False,
    show_default=True,
    help="Whether the key must be present and not null.",
)
@pass_ctms
def rules_set(ctms: CliContext, waitlist: str, field: str, max_length: int, required: bool) -> None:
    """Add or replace the rule of key FIELD in the `fields` of waitlist WAITLIST (`*`: every waitlist
    without rules of its own). The first rule of a waitlist makes it accept only its ruled keys."""

    async def work(service: WaitlistRulesAdminService) -> WaitlistFieldRule:
        return await service.set(waitlist, field, max_length=max_length, required=required)

    rule = _admin_service(ctms, work)
    state = "required" if rule.required else "optional"
    click.echo(
        f"Set {rule.waitlist}.{rule.field}: at most {rule.max_length} characters, {state}. {_EFFECT}"
    )


@rules.command("remove")
@click.argument("waitlist")
@click.argument("field")
@pass_ctms
def rules_remove(ctms: CliContext, waitlist: str, field: str) -> None:
    """Remove the rule of key FIELD of waitlist WAITLIST. Without any rule left, the waitlist accepts
    any key again."""

    async def work(service: WaitlistRulesAdminService) -> None:
        await service.remove(waitlist, field)

    _admin_service(ctms, work)
    click.echo(f"Removed {waitlist}.{field}. {_EFFECT}")
