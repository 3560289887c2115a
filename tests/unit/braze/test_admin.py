"""`BrazeAdminService` on the memory repository: the rules of the subscription group mapping."""

from __future__ import annotations

import pytest

from ctms_adapters.memory import InMemoryBrazeSubscriptionGroupRepository
from ctms_core.domain.braze import BrazeConfiguration
from ctms_core.domain.errors import BadRequestError, NotFoundError
from ctms_core.services.braze_admin import BrazeAdminService


@pytest.fixture
def repository() -> InMemoryBrazeSubscriptionGroupRepository:
    return InMemoryBrazeSubscriptionGroupRepository()


async def test_a_mapping_is_added_replaced_listed_by_name_and_removed(
    repository: InMemoryBrazeSubscriptionGroupRepository,
) -> None:
    service = BrazeAdminService(repository)

    assert await service.map("newsletter", " mozilla-foundation ", "group-2") == (
        "mozilla-foundation",
        "group-2",
    )
    await service.map("newsletter", "firefox-news", "group-0")
    await service.map("newsletter", "firefox-news", "group-1")
    await service.map("waitlist", "vpn", "group-3")

    assert await service.subscription_groups("newsletter") == [
        ("firefox-news", "group-1"),
        ("mozilla-foundation", "group-2"),
    ]
    assert await repository.load() == BrazeConfiguration(
        newsletter_groups={"firefox-news": "group-1", "mozilla-foundation": "group-2"},
        waitlist_groups={"vpn": "group-3"},
    )
    assert await service.unmap("newsletter", "firefox-news") == "group-1"
    assert await service.subscription_groups("newsletter") == [("mozilla-foundation", "group-2")]


@pytest.mark.parametrize(
    ("name", "group_id"), [("", "g"), ("   ", "g"), ("n", ""), ("n" * 256, "g"), ("a\tb", "g")]
)
async def test_a_bad_name_or_group_id_is_refused_and_nothing_is_stored(
    repository: InMemoryBrazeSubscriptionGroupRepository, name: str, group_id: str
) -> None:
    with pytest.raises(BadRequestError):
        await BrazeAdminService(repository).map("newsletter", name, group_id)
    assert repository.groups == {}


async def test_removing_an_unmapped_name_is_not_found(
    repository: InMemoryBrazeSubscriptionGroupRepository,
) -> None:
    await repository.add("waitlist", "vpn", "g")

    with pytest.raises(NotFoundError, match="newsletter 'vpn'"):
        await BrazeAdminService(repository).unmap("newsletter", "vpn")
    assert repository.groups == {("waitlist", "vpn"): "g"}
