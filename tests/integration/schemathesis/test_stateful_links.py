"""Stateful schemathesis on PostgreSQL: contact workflows chained by the document's OpenAPI links
(docs/contract.md §16.3, issue #9).

schemathesis builds a state machine from the links of `/openapi.json`: a response carrying a contact
(`POST /ctms` 201/200, `GET`/`PUT`/`PATCH /ctms/{email_id}`) leads to reading, replacing, changing,
looking up and erasing that very contact, with `email_id` and `primary_email` taken from the response.
Only those links: schemathesis' own inferred ones (`GetEmailSchema`, `GetFxa`, …) are turned off. With
them on, they made up about 95 % of the transitions, and a CI run once followed none of the document's. Each scenario is a short sequence of such calls, sent with
the live server's API token; every response gets the stateless checks (no 5xx, documented status code
and content type, body matching its schema). Findings are collected over the whole run and reported
together.

Bounded: at most `SCENARIOS` sequences of at most `STEPS` calls, within `BUDGET_SECONDS`. Each scenario
erases the contacts it touched, so the next starts from the same database. Generation is derandomized,
but not every draw is replayable: schemathesis decides with a true random source whether to apply a
link's value, and responses depend on the server. When Hypothesis notices that a replay went
differently (`Flaky`), the scenarios run so far stand and the run goes on with fresh seeds, as
schemathesis' own runner does.
"""

from __future__ import annotations

import time
import urllib.parse
from collections import Counter
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from schemathesis.core.failures import Failure, FailureGroup

from tests.integration.schemathesis.conftest import LiveServer
from tests.integration.schemathesis.test_openapi_conformance import (
    CHECKS,
    REQUEST_TIMEOUT_SECONDS,
    describe,
)

SCENARIOS = 60
STEPS = 8
BUDGET_SECONDS = 30.0
CONTACT_OPERATIONS = r"^/(ctms|identity|identities)(/|$)"
# The links of the document.
DOCUMENT_LINKS = {
    "ReadContact",
    "ReplaceContact",
    "UpdateContact",
    "LookUpContact",
    "ReadIdentity",
    "LookUpIdentities",
    "DeleteContact",
}


def _link_name(transition_id: str) -> str:
    """`UpdateContact` from `POST /ctms -> [201] UpdateContact -> PATCH /ctms/{email_id}`."""
    return transition_id.split(" -> ")[1].split(" ", 1)[1]


def _is_inconsistent_replay(error: BaseException) -> bool:
    """Hypothesis asserts, rather than raising `Flaky`, when a replay draws past a value an earlier
    run rejected (schemathesis' runner treats both alike)."""
    traceback = error.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    return (
        isinstance(error, AssertionError)
        and traceback is not None
        and traceback.tb_frame.f_globals.get("__name__")
        == "hypothesis.internal.conjecture.datatree"
    )


def test_contact_workflows_chained_by_links_conform_to_the_document(
    live_server: LiveServer,
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json").include(
        path_regex=CONTACT_OPERATIONS
    )
    # Invalid input is the stateless suite's business; here every step should act on a contact (text
    # with NUL is refused: the document leaves that rule out of its string schemas).
    schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE], allow_x00=False)
    schema.config.phases.stateful.inference.algorithms = []
    findings: dict[str, str] = {}
    followed: Counter[str] = Counter()
    chosen: Counter[str] = Counter()
    answered: Counter[tuple[str, int]] = Counter()
    scenarios = 0

    class ContactWorkflows(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.touched: set[str] = set()

        def step(self, input: Any) -> Any:
            if input.transition is not None:
                chosen[_link_name(input.transition.id)] += 1
                if input.is_applied:
                    followed[_link_name(input.transition.id)] += 1
            return super().step(input)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {
                "base_url": live_server.base_url,
                "headers": live_server.auth,
                "timeout": REQUEST_TIMEOUT_SECONDS,
            }

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            answered[(case.operation.label, response.status_code)] += 1
            body = response.json() if response.status_code < 300 else None
            contacts = body if isinstance(body, list) else [body]
            for contact in contacts:
                email = contact.get("email") if isinstance(contact, dict) else None
                if isinstance(email, dict) and isinstance(email.get("primary_email"), str):
                    self.touched.add(email["primary_email"])

        def validate_response(
            self, response: Any, case: schemathesis.Case, *args: Any, **kwargs: Any
        ) -> None:
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                for failure in group.exceptions:
                    key = f"{case.operation.label}|{failure.title}|{response.status_code}"
                    findings.setdefault(key, describe(case, response, failure))
            except Failure as failure:
                key = f"{case.operation.label}|{failure.title}|{response.status_code}"
                findings.setdefault(key, describe(case, response, failure))

        def teardown(self) -> None:
            nonlocal scenarios
            scenarios += 1
            for email in self.touched:
                httpx.delete(
                    f"{live_server.base_url}/ctms/{urllib.parse.quote(email, safe='')}",
                    headers=live_server.auth,
                    timeout=REQUEST_TIMEOUT_SECONDS,
                )
            super().teardown()

    deadline = time.monotonic() + BUDGET_SECONDS
    restarts = 0
    while scenarios < SCENARIOS and time.monotonic() < deadline:
        try:
            ContactWorkflows.run(
                settings=settings(
                    max_examples=SCENARIOS - scenarios,
                    stateful_step_count=STEPS,
                    deadline=None,
                    database=None,
                    derandomize=restarts == 0,
                    phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
            )
            break
        except (Flaky, AssertionError) as error:
            if not isinstance(error, Flaky) and not _is_inconsistent_replay(error):
                raise
            restarts += 1

    assert not findings, "\n".join(findings.values())
    assert scenarios >= SCENARIOS // 2, f"only {scenarios} scenarios ran ({restarts} restarts)"
    assert set(followed) & DOCUMENT_LINKS, (
        f"no link of the document followed: {dict(followed)}; chosen: {dict(chosen)}; "
        f"{scenarios} scenarios, {restarts} restarts; answered: {dict(answered)}"
    )
