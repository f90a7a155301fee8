"""Invoice writes: drafts, finalization (gapless numbers), payments applied, void, uncollectible.

Each service owns its transaction, locks the invoice row, and is idempotent: finalizing a finalized
invoice, voiding a void one or creating the invoice of a period that already has one returns what is
there. Integrators hear about it through `invoice.*` events, published on commit.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.events.services import event_publish, events_publish_many
from billing.invoicing.adjustments import Adjusted
from billing.invoicing.exceptions import InvoiceStateError
from billing.invoicing.models import (
    BillingReason,
    CollectedBy,
    Invoice,
    InvoiceLine,
    InvoiceNumbering,
    InvoiceStatus,
)
from billing.invoicing.signals import (
    invoice_marked_uncollectible,
    invoice_payment_applied,
    invoice_voided,
    invoices_finalized,
)
from billing.invoicing.totals import BatchAdjuster, invoice_adjust
from billing.memberships.models import Customer, Membership

ENGINE_REF_PREFIX = "minv_"  # our engine's payments name the invoice they collect as minv_<id>


@dataclass(frozen=True)
class LineDraft:
    """A line to put on a draft (amount in minor units, already rounded once)."""

    kind: str
    description: str
    amount: int
    quantity: Decimal = Decimal(1)
    unit_amount: Decimal = Decimal(0)
    price_id: int | None = None
    meter: str = ""
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
    proration: bool = False
    breakdown: list = field(default_factory=list)


def customer_details(customer: Customer) -> dict:
    """The customer as billed: kept on the invoice when the customer changes later (taken again
    when a draft is finalized). `country` and `tax_exempt` are what its tax was decided on."""
    metadata = customer.metadata if isinstance(customer.metadata, dict) else {}
    details = {"external_id": customer.external_id, "name": customer.name, "email": customer.email}
    for key in ("address", "country", "tax_id"):
        if metadata.get(key):
            details[key] = metadata[key]
    if customer.country:
        details["country"] = customer.country
    details["tax_exempt"] = customer.tax_exempt
    return details


def invoice_payload(invoice: Invoice) -> dict:
    return {
        "id": invoice.pk,
        "number": invoice.number or None,
        "status": invoice.status,
        "customer": invoice.customer.external_id,
        "currency": invoice.currency,
        "total": invoice.total,
        "credits_applied": invoice.credits_applied,
        "amount_paid": invoice.amount_paid,
        "amount_due": invoice.amount_due,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
    }


def _publish(kind: str, invoice: Invoice) -> None:
    event_publish(type=kind, customer=invoice.customer.external_id, payload=invoice_payload(invoice))


def invoice_draft_create(
    *,
    customer: Customer,
    currency: str,
    lines: list[LineDraft],
    membership: Membership | None = None,
    billing_reason: str = BillingReason.MANUAL,
    period_start: dt.datetime | None = None,
    period_end: dt.datetime | None = None,
    period_key: str = "",
    collected_by: str = CollectedBy.ENGINE,
    provider: str = "",
    provider_invoice_id: str = "",
) -> tuple[Invoice, bool]:
    """A draft with its lines and totals; (invoice, created). With a `period_key` (or a provider
    invoice id) the first invoice of that period is returned and nothing is created twice, also
    when two closes race."""
    unique = {"period_key": period_key} if period_key else {}
    if provider_invoice_id:
        unique = {"provider": provider, "provider_invoice_id": provider_invoice_id}
    with transaction.atomic():
        if unique and (existing := Invoice.objects.filter(**unique).first()) is not None:
            return existing, False
        invoice = Invoice(
            customer=customer,
            membership=membership,
            currency=currency.lower(),
            billing_reason=billing_reason,
            collected_by=collected_by,
            provider=provider,
            provider_invoice_id=provider_invoice_id,
            period_start=period_start,
            period_end=period_end,
            period_key=period_key,
            customer_details=customer_details(customer),
        )
        try:
            with transaction.atomic():  # a concurrent close of the same period wins the unique key
                invoice.save()
        except IntegrityError:
            if not unique:
                raise
            return Invoice.objects.get(**unique), False
        InvoiceLine.objects.bulk_create([_line_row(invoice, line) for line in lines])
        _totals(invoice)
        invoice.save(
            update_fields=["subtotal", "discount", "tax", "total", "credits_applied", "credits_used"]
        )
        _publish("invoice.created", invoice)
    return invoice, True


@dataclass(frozen=True)
class InvoiceSpec:
    """An invoice to issue (finalized at once) by `invoices_issue_many`; `period_key` makes it unique."""

    customer: Customer
    currency: str
    lines: list[LineDraft]
    period_key: str
    membership: Membership | None = None
    billing_reason: str = BillingReason.SUBSCRIPTION_CYCLE
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None


def invoices_issue_many(specs: list[InvoiceSpec]) -> list[Invoice]:
    """Issue many invoices at once (a billing run): each is written already finalized -- numbered
    from the tenant's sequence, `open`, or `paid` when nothing is due -- with its lines, and
    announced (`invoice.created`, `invoice.finalized`, and `invoice.paid` when nothing is due), in
    a handful of statements per batch. Returns one invoice per spec, in order.

    Exactly once: an invoice whose `period_key` exists is returned as it is (a draft a crash left
    behind is finalized). The check runs under the numbering row's lock, which every issue holds
    until its transaction ends, so two runs closing the same periods make one invoice each."""
    if not specs:
        return []
    with transaction.atomic():
        adjuster = BatchAdjuster(  # coupons and taxes (billing.invoicing.totals)
            customers=[spec.customer for spec in specs], lines=[line for spec in specs for line in spec.lines]
        )
        InvoiceNumbering.objects.get_or_create(pk=1, defaults={"prefix": _prefix()})
        numbering = InvoiceNumbering.objects.select_for_update().get(pk=1)
        existing = {
            invoice.period_key: invoice
            for invoice in Invoice.objects.filter(period_key__in=[spec.period_key for spec in specs])
        }
        now = timezone.now()
        fresh: dict[str, tuple[Invoice, InvoiceSpec]] = {}
        adjusted: dict[str, Adjusted] = {}
        for spec in specs:
            if spec.period_key in existing or spec.period_key in fresh:
                continue
            adjusted[spec.period_key] = a = adjuster.adjust(
                customer=spec.customer, currency=spec.currency.lower(), lines=spec.lines
            )
            invoice = Invoice(
                customer=spec.customer, membership=spec.membership, currency=spec.currency.lower(),
                billing_reason=spec.billing_reason, collected_by=CollectedBy.ENGINE,
                period_start=spec.period_start, period_end=spec.period_end, period_key=spec.period_key,
                customer_details=customer_details(spec.customer), subtotal=a.subtotal, discount=a.discount,
                tax=a.tax, total=a.total, credits_applied=a.credits_applied, credits_used=a.credits_used,
                number=f"{numbering.prefix}-{numbering.next_number:06d}", finalized_at=now, due_at=now,
                status=InvoiceStatus.OPEN if a.total else InvoiceStatus.PAID, paid_at=None if a.total else now,
            )  # fmt: skip
            numbering.next_number += 1
            fresh[spec.period_key] = (invoice, spec)
        if fresh:
            Invoice.objects.bulk_create([invoice for invoice, _ in fresh.values()], batch_size=1000)
            rows = [_line_row(invoice, line) for invoice, spec in fresh.values() for line in spec.lines]
            for row, share in zip(rows, [s for key in fresh for s in adjusted[key].lines], strict=True):
                row.discount_amount, row.tax_amount = share.discount, share.tax
            InvoiceLine.objects.bulk_create(rows, batch_size=2000)
            adjuster.save(issued=[(invoice, adjusted[key]) for key, (invoice, _) in fresh.items()])
            numbering.save(update_fields=["next_number"])
            events = []
            for invoice, _ in fresh.values():
                payload, who = invoice_payload(invoice), invoice.customer.external_id
                events += [("invoice.created", who, payload), ("invoice.finalized", who, payload)]
                if invoice.status == InvoiceStatus.PAID:
                    events.append(("invoice.paid", who, payload))
            events_publish_many(events)
            invoices_finalized.send(sender=Invoice, invoices=[invoice for invoice, _ in fresh.values()])
    result = []
    for spec in specs:
        invoice = fresh[spec.period_key][0] if spec.period_key in fresh else existing[spec.period_key]
        if invoice.status == InvoiceStatus.DRAFT:
            invoice = invoice_finalize(invoice_id=invoice.pk)
        result.append(invoice)
    return result


def _line_row(invoice: Invoice, line: LineDraft) -> InvoiceLine:
    return InvoiceLine(
        invoice=invoice,
        kind=line.kind,
        description=line.description[:300],
        quantity=line.quantity,
        unit_amount=line.unit_amount,
        amount=line.amount,
        price_id=line.price_id,
        meter=line.meter,
        period_start=line.period_start,
        period_end=line.period_end,
        proration=line.proration,
        breakdown=list(line.breakdown),
    )


def _totals(invoice: Invoice, *, finalizing: bool = False) -> None:
    if invoice.collected_by != CollectedBy.PROVIDER:  # a provider's invoice carries its own discount and tax
        invoice_adjust(invoice=invoice, consume=finalizing)  # coupons and taxes (billing.invoicing.totals)
        return
    # a negative subtotal (credits larger than charges) bills nothing; the rest is not carried over yet
    subtotal = invoice.lines.aggregate(total=Sum("amount"))["total"] or 0
    invoice.subtotal = max(subtotal, 0)
    invoice.total = max(invoice.subtotal - invoice.discount + invoice.tax, 0)


def _prefix() -> str:
    slug = getattr(getattr(connection, "tenant", None), "slug", "") or connection.schema_name
    return (re.sub(r"[^A-Z0-9]", "", slug.upper()) or "INV")[:12]


def _number_take() -> str:
    """The next number of the tenant's sequence, under the sequence row's lock (gapless: the lock is
    held until the finalizing transaction ends, and a rollback gives the number back)."""
    InvoiceNumbering.objects.get_or_create(pk=1, defaults={"prefix": _prefix()})
    numbering = InvoiceNumbering.objects.select_for_update().get(pk=1)
    number = f"{numbering.prefix}-{numbering.next_number:06d}"
    numbering.next_number += 1
    numbering.save(update_fields=["next_number"])
    return number


def _locked(invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=invoice_id)


def invoice_finalize(*, invoice_id: int, due_in: dt.timedelta = dt.timedelta(0)) -> Invoice:
    """Number the draft and freeze it: `open`, or `paid` at once when nothing is due. Finalizing a
    finalized invoice returns it unchanged."""
    with transaction.atomic():
        invoice = _locked(invoice_id)
        if invoice.status != InvoiceStatus.DRAFT:
            return invoice
        invoice.customer_details = customer_details(invoice.customer)
        _totals(invoice, finalizing=True)
        now = timezone.now()
        invoice.number = _number_take()
        invoice.finalized_at, invoice.due_at = now, now + due_in
        invoice.status = InvoiceStatus.OPEN
        if invoice.total == 0:
            invoice.status, invoice.paid_at = InvoiceStatus.PAID, now
        invoice.save()
        _publish("invoice.finalized", invoice)
        invoices_finalized.send(sender=Invoice, invoices=[invoice])
        if invoice.status == InvoiceStatus.PAID:
            _publish("invoice.paid", invoice)
    return invoice


def invoice_payment_apply(*, invoice_id: int, amount: int) -> Invoice:
    """Add a collected amount (the caller records the payment itself once, keyed by the provider's
    id); the invoice is `paid` once nothing is due."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvoiceStateError(
            "A payment is a positive integer amount in minor units.", code="invalid_amount"
        )
    with transaction.atomic():
        invoice = _locked(invoice_id)
        if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            raise InvoiceStateError(
                f"Invoice {invoice} is {invoice.status}: it takes no payment.",
                details={"status": invoice.status},
            )
        previous_status = invoice.status
        invoice.amount_paid += amount
        if invoice.amount_paid + invoice.amount_credited >= invoice.total:
            invoice.status, invoice.paid_at = InvoiceStatus.PAID, timezone.now()
        invoice.save(update_fields=["amount_paid", "status", "paid_at"])
        invoice_payment_applied.send(
            sender=Invoice, invoice=invoice, amount=amount, previous_status=previous_status
        )
        if invoice.status == InvoiceStatus.PAID:
            _publish("invoice.paid", invoice)
    return invoice


def engine_invoice_ref(invoice: Invoice) -> str:
    return f"{ENGINE_REF_PREFIX}{invoice.pk}"


def invoice_void(*, invoice_id: int) -> Invoice:
    """Cancel an open (or uncollectible) invoice nothing was paid on; its number stays used."""
    return _close(
        invoice_id,
        InvoiceStatus.VOID,
        "invoice.voided",
        from_=(InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE),
    )


def invoice_mark_uncollectible(*, invoice_id: int) -> Invoice:
    """Give up collecting an open invoice (it may still be paid later)."""
    return _close(
        invoice_id, InvoiceStatus.UNCOLLECTIBLE, "invoice.marked_uncollectible", from_=(InvoiceStatus.OPEN,)
    )


def _close(invoice_id: int, status: str, event: str, *, from_: tuple) -> Invoice:
    with transaction.atomic():
        invoice = _locked(invoice_id)
        if invoice.status == status:
            return invoice
        if invoice.collected_by == CollectedBy.PROVIDER:
            # the provider runs its collection: changed only here, it would go on collecting
            raise InvoiceStateError(
                f"Invoice {invoice} is collected by {invoice.provider}: change it there; its webhook updates "
                "it here.",
                code="collected_by_provider",
                details={"provider": invoice.provider},
            )
        if invoice.status not in from_ or (status == InvoiceStatus.VOID and invoice.amount_paid):
            raise InvoiceStateError(
                f"Invoice {invoice} is {invoice.status}: it cannot become {status}"
                + (" (money was paid on it: issue a credit note)" if invoice.amount_paid else "")
                + ".",
                details={"status": invoice.status},
            )
        invoice.status = status
        if status == InvoiceStatus.VOID:
            invoice.voided_at = timezone.now()
        invoice.save(update_fields=["status", "voided_at"])
        if status == InvoiceStatus.VOID:
            invoice_voided.send(sender=Invoice, invoice=invoice)
        elif status == InvoiceStatus.UNCOLLECTIBLE:
            invoice_marked_uncollectible.send(sender=Invoice, invoice=invoice)
        _publish(event, invoice)
    return invoice
