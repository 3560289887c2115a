"""Stripe ingestion (docs/contract.md §8.2, §8.3, §8.4, §8.5, §18.3) and the products read model."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from msgspec.structs import replace

from ctms_core.domain.errors import UniqueConstraintViolation, WriteConflictError
from ctms_core.domain.segments import Product, compute_products
from ctms_core.domain.stripe import (
    CustomerPayload,
    FxaIdConflict,
    IngestActions,
    InvoicePayload,
    LineItemPayload,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLineItem,
    StripeObjectError,
    StripePayload,
    StripePrice,
    StripeSubscription,
    StripeSubscriptionItem,
    SubscriptionItemPayload,
    SubscriptionPayload,
    object_type_and_id,
    parse_stripe_object,
    same_data,
)
from ctms_core.ports.clock import Clock
from ctms_core.ports.stripe import StripeRepository, StripeUnitOfWork

Row = TypeVar(
    "Row",
    StripeCustomer,
    StripePrice,
    StripeSubscription,
    StripeSubscriptionItem,
    StripeCustomer,
    StripeInvoice,
    StripeInvoiceLineItem,
)

_CHANGES = frozenset({"created", "updated", "deleted"})

Uow = TypeVar("Uow", bound=StripeUnitOfWork)

stripe_logger = logging.getLogger("ctms.stripe")

#: Called inside the ingest transaction with the touched FxA ids; returns the email_ids of the contacts
#: they resolve to (and may queue them for Acoustic sync in the same transaction).
ContactToucher = Callable[[Uow, tuple[str, ...]], Awaitable[tuple[uuid.UUID, ...]]]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What ingesting one Stripe object did.

    `actions` is the `ingest_actions` log field (docs/contract.md §8.4: action name → sorted `"<label>:<id>"` strings).
    `fxa_ids` are the FxA ids of the contacts whose Stripe data the object concerns (sorted): the caller
    resolves them to contacts (`fxa.fxa_id`) and queues those for Acoustic sync. `fxa_id_conflict` is the FxA
    id whose previous customer was deleted to resolve a conflict. `customer_email` is the customer
    object's `email`, for trace logging only.
    """

    object_type: str
    stripe_id: str
    actions: dict[str, list[str]]
    fxa_ids: tuple[str, ...]
    fxa_id_conflict: str | None = None
    customer_email: str | None = None
    #: The contacts (`fxa.fxa_id` in `fxa_ids`) the ingest touched, resolved in its transaction.
    email_ids: tuple[uuid.UUID, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether any row was created, updated or deleted."""
        return any(self.actions.get(action) for action in _CHANGES)


class _Ingestion:
    """The writes of one object inside one transaction, with what they did."""

    def __init__(self, repository: StripeRepository, now: datetime) -> None:
        self.repository = repository
        self.now = now
        self.actions = IngestActions()
        self.customer_ids: set[str] = set()
        self.fxa_ids: set[str] = set()

    async def run(self, payload: StripePayload) -> None:
        match payload:
            case CustomerPayload():
                await self.customer(payload)
            case SubscriptionPayload():
                await self.subscription(payload)
            case SubscriptionItemPayload():
                subscription = await self.repository.get_subscription(
                    payload.item.stripe_subscription_id
                )
                if subscription is None:
                    raise StripeObjectError(
                        f"subscription_item {payload.item.stripe_id}: subscription "
                        f"{payload.item.stripe_subscription_id} is unknown"
                    )
                await self.subscription_item(payload)
            case StripePrice():
                await self.price(payload)
            case InvoicePayload():
                await self.invoice(payload)

    async def write(
        self,
        label: str,
        existing: Row | None,
        proposed: Row,
        save: Callable[[Row], Awaitable[None]],
    ) -> Row:
        """Create, update or leave a row, recording `created`/`updated`/`no_change` (docs/contract.md §8.3)."""
        if existing is None:
            row = replace(proposed, create_timestamp=self.now, update_timestamp=self.now)
            action = "created"
        elif same_data(existing, proposed):
            self.actions.add("no_change", label, existing.stripe_id)
            return existing
        else:
            row = replace(
                proposed, create_timestamp=existing.create_timestamp, update_timestamp=self.now
            )
            action = "updated"
        await save(row)
        self.actions.add(action, label, row.stripe_id)
        return row

    async def customer(self, payload: CustomerPayload) -> None:
        repository = self.repository
        incoming = payload.customer  # None for a deletion, which never changes the FxA id
        existing = await repository.get_customer(payload.stripe_id, for_update=True)
        if incoming is not None and (existing is None or existing.fxa_id != incoming.fxa_id):
            holder = await repository.find_customer_by_fxa_id(incoming.fxa_id, for_update=True)
            if holder is not None and holder.stripe_id != incoming.stripe_id:
                raise FxaIdConflict(holder.stripe_id, incoming.fxa_id)

        if existing is None:
            if incoming is None:
                self.actions.add("skipped", "customer", payload.stripe_id)
                return
            proposed = incoming
        else:
            self.fxa_ids.add(existing.fxa_id)  # the contact losing the customer, if the id moves
            if incoming is None:
                proposed = replace(existing, deleted=True)
            else:
                proposed = replace(incoming, deleted=existing.deleted)
        await self.write("customer", existing, proposed, repository.save_customer)
        self.customer_ids.add(payload.stripe_id)

    async def price(self, price: StripePrice) -> StripePrice:
        existing = await self.repository.get_price(price.stripe_id)
        return await self.write("price", existing, price, self.repository.save_price)

    async def subscription(self, payload: SubscriptionPayload) -> None:
        repository = self.repository
        proposed = payload.subscription
        existing = await repository.get_subscription(proposed.stripe_id, for_update=True)
        orphans = set(await repository.subscription_item_ids(proposed.stripe_id, for_update=True))
        if existing is not None:
            self.customer_ids.add(existing.stripe_customer_id)
        await self.write("subscription", existing, proposed, repository.save_subscription)
        self.customer_ids.add(proposed.stripe_customer_id)

        for item in payload.items:
            await self.subscription_item(item)
            orphans.discard(item.item.stripe_id)
        if orphans:
            await repository.delete_subscription_items(sorted(orphans))
            for item_id in orphans:
                self.actions.add("deleted", "subscription_item", item_id)

    async def subscription_item(self, payload: SubscriptionItemPayload) -> None:
        repository = self.repository
        await self.price(payload.price)
        proposed = payload.item
        existing = await repository.get_subscription_item(proposed.stripe_id, for_update=True)
        for subscription_id in {proposed.stripe_subscription_id} | (
            set() if existing is None else {existing.stripe_subscription_id}
        ):
            subscription = await repository.get_subscription(subscription_id)
            if subscription is not None:
                self.customer_ids.add(subscription.stripe_customer_id)
        await self.write("subscription_item", existing, proposed, repository.save_subscription_item)

    async def invoice(self, payload: InvoicePayload) -> None:
        repository = self.repository
        proposed = payload.invoice
        existing = await repository.get_invoice(proposed.stripe_id, for_update=True)
        orphans = set(await repository.invoice_line_item_ids(proposed.stripe_id, for_update=True))
        if existing is not None:
            self.customer_ids.add(existing.stripe_customer_id)
        await self.write("invoice", existing, proposed, repository.save_invoice)
        self.customer_ids.add(proposed.stripe_customer_id)

        for line in payload.lines:
            await self.line_item(line)
            orphans.discard(line.line_item.stripe_id)
        if orphans:
            await repository.delete_invoice_line_items(sorted(orphans))
            for line_id in orphans:
                self.actions.add("deleted", "line_item", line_id)

    async def line_item(self, payload: LineItemPayload) -> None:
        await self.price(payload.price)
        proposed = payload.line_item
        existing = await self.repository.get_invoice_line_item(proposed.stripe_id, for_update=True)
        await self.write("line_item", existing, proposed, self.repository.save_invoice_line_item)

    async def delete_customer_and_data(self, customer_id: str, fxa_id: str) -> None:
        """Delete a customer with its subscriptions, their items, its invoices and their line items
        (the fix of docs/contract.md §8.3: nothing is left orphaned)."""
        repository = self.repository
        subscription_ids = await repository.subscription_ids_of_customer(
            customer_id, for_update=True
        )
        item_ids = [
            item_id
            for subscription_id in subscription_ids
            for item_id in await repository.subscription_item_ids(subscription_id, for_update=True)
        ]
        invoice_ids = await repository.invoice_ids_of_customer(customer_id, for_update=True)
        line_ids = [
            line_id
            for invoice_id in invoice_ids
            for line_id in await repository.invoice_line_item_ids(invoice_id, for_update=True)
        ]
        await repository.delete_invoices(invoice_ids)
        await repository.delete_subscriptions(subscription_ids)
        await repository.delete_customer(customer_id)
        for label, ids in (
            ("customer", [customer_id]),
            ("subscription", subscription_ids),
            ("subscription_item", item_ids),
            ("invoice", invoice_ids),
            ("line_item", line_ids),
        ):
            for stripe_id in ids:
                self.actions.add("deleted", label, stripe_id)
        self.fxa_ids.add(fxa_id)

    async def touched_fxa_ids(self) -> tuple[str, ...]:
        """FxA ids of every customer the object reached, as stored at the end of the transaction."""
        fxa_ids = set(self.fxa_ids)
        for customer_id in self.customer_ids:
            customer = await self.repository.get_customer(customer_id)
            if customer is not None:
                fxa_ids.add(customer.fxa_id)
        return tuple(sorted(fxa_ids))


class StripeIngestService(Generic[Uow]):
    """Mirror Stripe objects into CTMS and derive per-product segments from them.

    Business rules:

    * One object, one transaction: the whole object (with its embedded items, line items and prices) is
      parsed and validated before anything is written; any error leaves nothing behind.
    * Supported objects: `customer`, `subscription`, `subscription_item`, `price`, `invoice` (line items only
      inside their invoice). A body without `object`/`id` raises `StripeRequestNotRecognized`; another
      object type raises `UnknownStripeObject` (pub/sub records it as `skipped`); invalid or missing data
      raises `StripeObjectError`. Enumerations are Stripe's real ones (invoice `uncollectible`, subscription
      `paused`) and are checked for new and known objects alike.
    * Every row is created, updated or left alone, reported as `created` / `updated` / `no_change`: a replay
      of the same object changes nothing and reports `no_change` everywhere. CTMS timestamps move only when
      Stripe data changed.
    * Customers: `description` is the FxA id and is required (also on update, where v3.3 failed at commit).
      Updates set `stripe_created` too. A `deleted` customer is marked deleted (other columns kept; it is
      never un-deleted, since Stripe cannot restore a deleted customer and a later non-deleted payload is a
      late event); an unknown deleted customer is not stored and reported `skipped`.
    * FxA-id conflict: when another customer holds the incoming customer's FxA id, that customer is deleted
      together with its subscriptions, their items, its invoices and their line items (all reported
      `deleted`), then the object is ingested again, once, in the same transaction.
    * Subscriptions and invoices own their items and line items: items missing from the payload are
      deleted (`deleted`). A standalone subscription item must belong to a known subscription.
    * Prices are shared, never deleted, and are not reported as touching any contact.
    * The result names the FxA ids of every customer the object reached (before and after the change), so
      the caller can queue those contacts for Acoustic sync: `touch_contacts` does it inside the ingest
      transaction, and once it committed `contacts_queued` is told how many contacts were queued (the
      `ctms_pending_acoustic_sync_total` metric counts them, as it counts contact writes).
    * A write conflict (a concurrent transaction changed the same rows) leaves nothing behind and is
      logged as an ERROR on `ctms.stripe` naming the object, never its data (operators watch for conflict
      storms), then raised as `WriteConflictError` (409, "try again").
    """

    def __init__(
        self,
        uow_factory: Callable[[], Uow],
        clock: Clock,
        touch_contacts: ContactToucher[Uow] | None = None,
        *,
        contacts_queued: Callable[[int], None] | None = None,
    ) -> None:
        self._uow_factory = uow_factory
        self._clock = clock
        self._touch_contacts = touch_contacts
        self._contacts_queued = contacts_queued

    async def ingest(self, data: Any) -> IngestResult:
        """Ingest one decoded Stripe JSON object and commit."""
        object_type, stripe_id = object_type_and_id(data)
        payload = parse_stripe_object(data)
        try:
            result = await self._ingest(payload, object_type, stripe_id)
        except WriteConflictError as error:
            cause = error.__cause__ or error
            stripe_logger.error(
                "Stripe write conflict converted to 409",
                extra={
                    "stripe_object": f"{object_type}:{stripe_id}",
                    "error": type(cause).__name__,
                },
            )
            raise
        if result.email_ids and self._contacts_queued is not None:
            self._contacts_queued(len(result.email_ids))
        return result

    async def _ingest(
        self, payload: StripePayload, object_type: str, stripe_id: str
    ) -> IngestResult:
        conflict: str | None = None
        async with self._uow_factory() as uow:
            now = self._clock.now()
            ingestion = _Ingestion(uow.stripe, now)
            try:
                try:
                    await ingestion.run(payload)
                except FxaIdConflict as error:
                    # Raised before the customer ingester writes anything: nothing to undo.
                    conflict = error.fxa_id
                    ingestion = _Ingestion(uow.stripe, now)
                    await ingestion.delete_customer_and_data(error.other_customer_id, error.fxa_id)
                    await ingestion.run(payload)
            except UniqueConstraintViolation as error:
                # A concurrent transaction gave the FxA id to another customer after our check.
                raise WriteConflictError() from error
            fxa_ids = await ingestion.touched_fxa_ids()
            email_ids: tuple[uuid.UUID, ...] = ()
            if self._touch_contacts is not None and fxa_ids:
                email_ids = await self._touch_contacts(uow, fxa_ids)
            await uow.commit()
        email = payload.email if isinstance(payload, CustomerPayload) else None
        return IngestResult(
            object_type=object_type,
            stripe_id=stripe_id,
            actions=ingestion.actions.as_log_field(),
            fxa_ids=fxa_ids,
            fxa_id_conflict=conflict,
            customer_email=email,
            email_ids=email_ids,
        )

    async def products_for(self, fxa_id: str) -> list[Product]:
        """The products of the contact with this FxA id (docs/contract.md §8.5), sorted by product id; [] without a
        Stripe customer."""
        return (await self.products_for_many([fxa_id])).get(fxa_id, [])

    async def products_for_many(self, fxa_ids: Sequence[str]) -> dict[str, list[Product]]:
        """Products per FxA id, in one read; FxA ids without a Stripe customer map to []."""
        async with self._uow_factory() as uow:
            accounts = await uow.stripe.accounts_for_fxa_ids(fxa_ids)
        return {fxa_id: compute_products(accounts.get(fxa_id)) for fxa_id in fxa_ids}
