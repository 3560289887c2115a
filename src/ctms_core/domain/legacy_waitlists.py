"""The v3.3 translation of legacy waitlist input into waitlist changes (docs/contract.md §6.1, §6.2), with docs/contract.md §6.1, §6.2, §6.3.

Old clients sign up for VPN and Relay with `vpn_waitlist` / `relay_waitlist` objects and `*-waitlist`
newsletters. This module turns that input into *partial* waitlist items (`{"name": ..., <only the keys to
change>}`), which each verb then applies with its normal rules. Being partial is what fixes v3.3's bugs:

* an unsubscription only sets `subscribed: false` — it never wipes `fields`, `source` or `unsub_reason`;
* a Relay country update changes the country of *subscribed* Relay waitlists only — it never re-subscribes
  one as a side effect (if none is subscribed, the request is an explicit sign-up to `relay`);
* changes for one name are merged, so a body can never produce two items of one name;
* POST and PUT translate only when the body carries a legacy key, so a PUT without them does not touch
  waitlists through this path; PATCH also translates `*-waitlist` newsletter unsubscriptions and
  `"newsletters": "UNSUBSCRIBE"` as v3.3 did;
* `used` (the legacy request counter) is true only when legacy keys were sent and changed something:
  GET documents echo all-null `vpn_waitlist`/`relay_waitlist` objects, which are not legacy requests;
* an all-null `vpn_waitlist` creates no waitlist (v3.3 created an empty one, docs/contract.md §6.2), so a GET → PUT
  round trip is lossless.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from msgspec import UNSET

from ctms_core.domain.contact import Waitlist
from ctms_core.domain.inputs import (
    Delete,
    LegacyRelayInput,
    LegacyRelayWaitlist,
    LegacyVpnInput,
    LegacyVpnWaitlist,
)


@dataclass(frozen=True, slots=True)
class LegacyTranslation:
    used: bool
    changes: tuple[dict[str, Any], ...]


NO_TRANSLATION = LegacyTranslation(used=False, changes=())


@dataclass(frozen=True, slots=True)
class NewsletterSignal:
    """What the translation needs of a newsletter item: its name and whether it unsubscribes."""

    name: str
    unsubscribes: bool


def waitlist_name_for_newsletter(newsletter_name: str) -> str:
    name = newsletter_name.replace("-waitlist", "")
    return "vpn" if name == "guardian-vpn" else name


class _Changes:
    """Partial waitlist items by name; changes for one name merge into one item."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def change(self, name: str, **values: Any) -> None:
        self.items.setdefault(name, {"name": name}).update(values)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: dict(values) for name, values in self.items.items()}


def translate_legacy_waitlists(
    *,
    newsletters: Iterable[NewsletterSignal] | None,
    unsubscribe_all_newsletters: bool,
    vpn: LegacyVpnInput,
    relay: LegacyRelayInput,
    stored: Mapping[str, Waitlist],
    newsletter_signals_count: bool,
) -> LegacyTranslation:
    """Return the partial waitlist items implied by legacy input (see the module docstring).

    `newsletter_signals_count` is True for PATCH: there, `*-waitlist` newsletter unsubscriptions and
    `"newsletters": "UNSUBSCRIBE"` act on waitlists even without legacy keys.
    """
    legacy_keys_sent = vpn is not UNSET or relay is not UNSET
    if not legacy_keys_sent and not newsletter_signals_count:
        return NO_TRANSLATION

    changes = _Changes()
    relay_newsletters = _apply_newsletter_signals(
        changes, newsletters, unsubscribe_all_newsletters, stored
    )
    changes_before_legacy_keys = changes.snapshot()
    if vpn is not UNSET:
        _apply_vpn(changes, vpn, stored)
    if relay is not UNSET:
        _apply_relay(changes, relay, relay_newsletters, stored)

    used = legacy_keys_sent and changes.items != changes_before_legacy_keys
    return LegacyTranslation(used=used, changes=tuple(changes.items.values()))


def _apply_newsletter_signals(
    changes: _Changes,
    newsletters: Iterable[NewsletterSignal] | None,
    unsubscribe_all_newsletters: bool,
    stored: Mapping[str, Waitlist],
) -> list[NewsletterSignal]:
    """Unsubscribe the waitlists that `*-waitlist` newsletter unsubscriptions (or `"UNSUBSCRIBE"`)
    name; return the `relay-*` newsletters, which say which Relay waitlists a country update targets."""
    relay_newsletters: list[NewsletterSignal] = []
    if unsubscribe_all_newsletters:
        for waitlist in stored.values():
            changes.change(waitlist.name, subscribed=False)
        return relay_newsletters
    for newsletter in newsletters or ():
        if newsletter.name.startswith("relay-"):
            relay_newsletters.append(newsletter)
        if newsletter.name.endswith("-waitlist") and newsletter.unsubscribes:
            changes.change(waitlist_name_for_newsletter(newsletter.name), subscribed=False)
    return relay_newsletters


def _apply_vpn(
    changes: _Changes, vpn: LegacyVpnWaitlist | Delete | None, stored: Mapping[str, Waitlist]
) -> None:
    """`vpn_waitlist`: null, `"DELETE"` or an all-null object unsubscribes a stored VPN waitlist;
    anything else subscribes with its geo and platform."""
    if vpn is None or vpn == "DELETE" or (vpn.geo is None and vpn.platform is None):
        # An all-null object is what GET documents carry for "no VPN waitlist": it unsubscribes
        # a stored one and creates nothing, so GET → PUT round trips are lossless.
        if stored.get("vpn") is not None:
            changes.change("vpn", subscribed=False)
        return
    changes.change("vpn", subscribed=True, fields={"geo": vpn.geo, "platform": vpn.platform})


def _apply_relay(
    changes: _Changes,
    relay: LegacyRelayWaitlist | Delete | None,
    relay_newsletters: list[NewsletterSignal],
    stored: Mapping[str, Waitlist],
) -> None:
    """`relay_waitlist`: without a geo it unsubscribes every stored Relay waitlist; with one, it sets
    the country of the Relay waitlists the `relay-*` newsletters name (subscribing them), else of the
    subscribed ones, else signs up to `relay`."""
    relay_stored = [waitlist for waitlist in stored.values() if waitlist.name.startswith("relay")]
    if not isinstance(relay, LegacyRelayWaitlist) or relay.geo is None:
        for waitlist in relay_stored:
            changes.change(waitlist.name, subscribed=False)
        return
    geo = relay.geo
    for waitlist in relay_stored:
        changes.change(waitlist.name)  # listed so that PUT keeps it as it is
    if relay_newsletters:
        for newsletter in relay_newsletters:
            if not newsletter.unsubscribes:
                name = waitlist_name_for_newsletter(newsletter.name)
                kept = stored.get(name)
                changes.change(
                    name, subscribed=True, fields={**(kept.fields if kept else {}), "geo": geo}
                )
        return
    subscribed_relay = [waitlist for waitlist in relay_stored if waitlist.subscribed]
    for waitlist in subscribed_relay:
        changes.change(waitlist.name, fields={**waitlist.fields, "geo": geo})
    if not subscribed_relay:
        kept = stored.get("relay")
        changes.change(
            "relay", subscribed=True, fields={**(kept.fields if kept else {}), "geo": geo}
        )
