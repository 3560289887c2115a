"""Waitlist field rules through the API (docs/waitlists.md): v3.3's 422 for the seeded rules, and a
rule changed in storage enforced once the API's cached rules expire, without a restart."""

from __future__ import annotations

from datetime import timedelta

from ctms_adapters.memory.clock import ManualClock
from ctms_core.services.waitlist_rules import WaitlistRulesAdminService
from tests.http_harness import Api, RunApi

INTERVAL = timedelta(seconds=60)  # the default CTMS_WAITLIST_RULES_CACHE_SECONDS


def _body(email: str, *waitlists: dict[str, object]) -> dict[str, object]:
    return {"email": {"primary_email": email}, "waitlists": list(waitlists)}


async def test_the_api_validates_with_the_rules_of_its_storage(
    running_api: RunApi,
) -> None:
    """The 422 of the seeded rules is v3.3's, and a rule set through the admin use case is enforced once
    the API's clock has passed the cache interval, without a restart."""
    clock = ManualClock()
    async with running_api(clock=clock) as api:
        vpn = {"name": "vpn", "fields": {"geo": "fr", "extra": "x"}}
        refused = await api.post("/ctms", json=_body("vpn@example.com", vpn))
        assert refused.status_code == 422
        assert refused.json()["detail"] == [
            {
                "loc": ["body", "waitlists", 0, "fields", "extra"],
                "msg": "extra fields not permitted",
                "type": "value_error.extra",
            }
        ]

        admin: WaitlistRulesAdminService = api.container.waitlist_rules_admin_service()
        await admin.set("monitor", "tier", max_length=4)
        long_tier = {"name": "monitor", "fields": {"tier": "platinum"}}
        before = await api.post("/ctms", json=_body("before@example.com", long_tier))
        assert before.status_code == 201, before.text  # the cached rules do not know it yet

        clock.advance(INTERVAL)
        after = await api.post("/ctms", json=_body("after@example.com", long_tier))
        assert after.status_code == 422
        assert after.json()["detail"] == [
            {
                "loc": ["body", "waitlists", 0, "fields", "tier"],
                "msg": "ensure this value has at most 4 characters",
                "type": "value_error.any_str.max_length",
            }
        ]

        # The contact stored before the rule still reads, and a PATCH that leaves its waitlists alone
        # still writes: only new waitlist `fields` are validated.
        email_id = before.json()["email"]["email_id"]
        read = await api.get(f"/ctms/{email_id}")
        assert read.status_code == 200
        assert read.json()["waitlists"][0]["fields"] == {"tier": "platinum"}
        patched = await api.patch(f"/ctms/{email_id}", json={"email": {"first_name": "Ada"}})
        assert patched.status_code == 200, patched.text


async def test_the_openapi_description_of_fields_states_the_seeded_rules_and_that_they_change(
    api: Api,
) -> None:
    document = (await api.get("/openapi.json", headers={})).json()
    fields = document["components"]["schemas"]["WaitlistInSchema"]["properties"]["fields"]
    assert "`ctms waitlists rules`" in fields["description"]
    assert "change at run time" in fields["description"]
    assert (
        "`vpn` accepts only `geo` (text of at most 100 characters), `platform`"
        in (fields["description"])
    )
    assert "`relay` accepts only `geo` (text of at most 100 characters)" in fields["description"]
    for key in ("geo", "platform"):
        [text, number, null] = fields["properties"][key]["anyOf"]
        assert (text["maxLength"], number["type"], null["type"]) == (100, "number", "null")
