"""The start-up rules on plain data: which database revisions a release may run on
(docs/adr/0006-schema-revisions-at-start.md)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ctms_adapters.postgres.schema_revisions import (
    RecordedRevision,
    SchemaState,
    Verdict,
    contract_reason,
    startup_verdict,
)

OURS = ("0001", "0002", "0003")  # this release: base ... head


def _recorded(*chain: tuple[str, bool]) -> dict[str, RecordedRevision]:
    """History rows for a linear chain starting at 0001: (revision, expand_only) pairs."""
    rows, parent = {}, None
    for revision, expand_only in chain:
        rows[revision] = RecordedRevision(revision, parent, expand_only)
        parent = revision
    return rows


OUR_HISTORY = _recorded(("0001", True), ("0002", True), ("0003", True))


def _verdict(*database: str, history: Mapping[str, RecordedRevision] = OUR_HISTORY) -> Verdict:
    return startup_verdict(database, head="0003", lineage=OURS, history=history)


def test_a_database_at_our_head_runs() -> None:
    verdict = _verdict("0003")
    assert (verdict.state, verdict.runnable) == (SchemaState.CURRENT, True)


@pytest.mark.parametrize("database", [(), ("0001",), ("0002",)])
def test_a_database_behind_or_without_revision_is_refused_naming_the_upgrade(
    database: tuple[str, ...],
) -> None:
    verdict = _verdict(*database, history={})
    assert (verdict.state, verdict.runnable) == (SchemaState.BEHIND, False)
    assert "`ctms db upgrade`" in verdict.message


def test_a_database_ahead_by_expand_only_revisions_runs_as_a_rollback() -> None:
    history = _recorded(*((r, True) for r in OURS), ("0004", True), ("0005", True))
    verdict = _verdict("0005", history=history)
    assert (verdict.state, verdict.runnable) == (SchemaState.AHEAD_BY_EXPANSIONS, True)
    assert "0004, 0005" in verdict.message


def test_a_database_ahead_by_a_contract_revision_is_refused_naming_it() -> None:
    history = _recorded(*((r, True) for r in OURS), ("0004", True), ("0005", False), ("0006", True))
    verdict = _verdict("0006", history=history)
    assert (verdict.state, verdict.runnable) == (SchemaState.AHEAD_BY_CONTRACT, False)
    assert "0005" in verdict.message and "0004" not in verdict.message


def test_a_contract_revision_of_our_own_past_does_not_matter() -> None:
    """Only the revisions between our head and the database's count."""
    history = _recorded(("0001", True), ("0002", False), ("0003", True), ("0004", True))
    assert _verdict("0004", history=history).state is SchemaState.AHEAD_BY_EXPANSIONS


@pytest.mark.parametrize("history", [{}, OUR_HISTORY])
def test_an_unknown_unrecorded_revision_is_refused_naming_the_adoption(
    history: Mapping[str, RecordedRevision],
) -> None:
    """ctms-api's v6 revision, with or without a schema history beside it."""
    verdict = _verdict("fd04e56b249e", history=history)
    assert (verdict.state, verdict.runnable) == (SchemaState.NOT_ADOPTED, False)
    assert "`ctms db adopt`" in verdict.message


def test_a_recorded_chain_that_does_not_reach_our_head_is_refused() -> None:
    """A newer release's revision whose parent is missing from the history, or that branched off
    before our head."""
    gap = {**OUR_HISTORY, "0005": RecordedRevision("0005", "0004", True)}
    branch = {**OUR_HISTORY, "0003b": RecordedRevision("0003b", "0002", True)}
    for history, revision in ((gap, "0005"), (branch, "0003b")):
        verdict = _verdict(revision, history=history)
        assert (verdict.state, verdict.runnable) == (SchemaState.UNRELATED, False)


def test_a_recorded_cycle_is_refused_instead_of_looping() -> None:
    cycle = {
        **OUR_HISTORY,
        "0004": RecordedRevision("0004", "0005", True),
        "0005": RecordedRevision("0005", "0004", True),
    }
    assert _verdict("0005", history=cycle).state is SchemaState.UNRELATED


def test_several_heads_are_refused() -> None:
    verdict = _verdict("0003", "0004")
    assert (verdict.state, verdict.runnable) == (SchemaState.UNRELATED, False)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ('"""Add a column."""\ndef upgrade(): ...\n', None),
        ("# contract: drops the v3 column\ndef upgrade(): ...\n", "drops the v3 column"),
        (
            '"""Drop it.\n\ncontract: nothing reads it since 2.0\n"""\n',
            "nothing reads it since 2.0",
        ),
        ("# contract:\n", None),  # a marker needs a reason
    ],
)
def test_a_revision_is_a_contract_step_only_with_a_reasoned_marker(
    source: str, reason: str | None
) -> None:
    assert contract_reason(source) == reason


def test_the_start_up_check_reads_the_same_revisions_as_alembic() -> None:
    """The check that runs without alembic parses the scripts into the chain alembic builds from them."""
    from alembic.script import ScriptDirectory

    from ctms_adapters.postgres.schema_check import release_head, release_revisions, script_location

    scripts = ScriptDirectory(str(script_location()))
    parents = release_revisions()
    assert parents == {script.revision: script.down_revision for script in scripts.walk_revisions()}
    assert release_head(parents) == scripts.get_current_head()
