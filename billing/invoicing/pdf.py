"""An invoice as a PDF (fpdf2): the tenant's name and billing address, the customer as billed, the
lines with each usage line's tier-by-tier breakdown, and the totals.

Text uses INVOICE_PDF_FONT / INVOICE_PDF_FONT_BOLD (TrueType files) when set, else DejaVu Sans when
the system has it (Latin, Greek, Cyrillic and every currency symbol; not CJK: set a font that has the
scripts your customers' names use); without either, the PDF core font is used, characters it cannot
draw become "?" and currency symbols become codes.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from billing.invoicing.models import Invoice, InvoiceStatus
from billing.metering.credit_models import credits_display
from kernel.decimals import decimal_text, grouped
from kernel.money import exponent, format_amount, format_unit_amount

logging.getLogger("fontTools").setLevel(logging.WARNING)  # its subsetting logs every glyph at INFO
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
STATUS_WORDS = {
    InvoiceStatus.DRAFT: "DRAFT",
    InvoiceStatus.OPEN: "DUE",
    InvoiceStatus.PAID: "PAID",
    InvoiceStatus.VOID: "VOID",
    InvoiceStatus.UNCOLLECTIBLE: "UNCOLLECTIBLE",
}


class _Document(FPDF):
    def __init__(self):
        super().__init__(format="A4", unit="mm")
        self.set_auto_page_break(auto=True, margin=18)
        self.unicode = False
        configured = (settings.INVOICE_PDF_FONT, settings.INVOICE_PDF_FONT_BOLD or settings.INVOICE_PDF_FONT)
        candidates = [tuple(Path(p) for p in configured)] if configured[0] else []
        candidates += [(folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf") for folder in FONT_DIRS]
        for regular, bold in candidates:
            if regular.exists() and bold.exists():
                self.add_font("Body", "", str(regular))
                self.add_font("Body", "B", str(bold))
                self.unicode = True
                break
        self.family = "Body" if self.unicode else "Helvetica"

    def text_of(self, value) -> str:
        text = str(value)
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def money(self, amount: int, currency: str) -> str:
        text = format_amount(amount, currency)
        if not self.unicode and not all(ord(c) < 256 for c in text):
            places = exponent(currency)
            whole, fraction = divmod(abs(amount), 10**places) if places else (abs(amount), 0)
            text = ("-" if amount < 0 else "") + f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
            text += f" {currency.upper()}"
        return text

    def footer(self):
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.set_text_color(120)
        self.cell(0, 5, f"Page {self.page_no()}/{{nb}}", align="R")


def invoice_pdf(
    *, invoice: Invoice, seller_name: str, seller_address: str = "", seller_logo: bytes | None = None
) -> bytes:
    """The invoice rendered as PDF bytes (drafts carry a DRAFT mark and no number); `seller_logo`
    (PNG bytes) is drawn above the seller's name, at most 16 mm high and 60 mm wide."""
    pdf = _Document()
    pdf.alias_nb_pages()
    pdf.add_page()
    body, currency = pdf.family, invoice.currency
    if seller_logo:
        from io import BytesIO

        from PIL import Image

        width, height = Image.open(BytesIO(seller_logo)).size
        scale = min(16 / height, 60 / width)
        pdf.image(BytesIO(seller_logo), x=pdf.l_margin, y=pdf.t_margin, w=width * scale, h=height * scale)
        pdf.set_y(pdf.t_margin + height * scale + 3)

    pdf.set_font(body, "B", 18)
    pdf.cell(120, 9, pdf.text_of(seller_name), new_x=XPos.RIGHT, new_y=YPos.TOP)
    pdf.set_font(body, "B", 14)
    pdf.set_text_color(
        *((170, 30, 30) if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID) else (40, 40, 40))
    )
    pdf.cell(
        0,
        9,
        STATUS_WORDS.get(invoice.status, invoice.status.upper()),
        align="R",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_text_color(60)
    pdf.set_font(body, "", 9)
    for line in [ln for ln in seller_address.splitlines() if ln.strip()][:6]:
        pdf.cell(0, 4.5, pdf.text_of(line.strip()), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)

    pdf.set_text_color(0)
    pdf.set_font(body, "B", 12)
    pdf.cell(
        0,
        7,
        pdf.text_of(f"Invoice {invoice.number}" if invoice.number else "Invoice (draft)"),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_font(body, "", 9)
    facts = []
    if invoice.finalized_at:
        facts.append(("Issued", f"{invoice.finalized_at:%Y-%m-%d}"))
    if invoice.due_at and invoice.status == InvoiceStatus.OPEN:
        facts.append(("Due", f"{invoice.due_at:%Y-%m-%d}"))
    if invoice.period_start and invoice.period_end:
        facts.append(("Period", f"{invoice.period_start:%Y-%m-%d} - {invoice.period_end:%Y-%m-%d}"))
    details = invoice.customer_details or {}
    billed = [details.get("name"), details.get("email"), details.get("address"), details.get("country")]
    billed = [str(b) for b in billed if b] or [invoice.customer.external_id]
    top = pdf.get_y()
    for label, value in facts:
        pdf.set_font(body, "B", 9)
        pdf.cell(18, 5, label)
        pdf.set_font(body, "", 9)
        pdf.cell(70, 5, pdf.text_of(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    bottom = pdf.get_y()
    pdf.set_xy(110, top)
    pdf.set_font(body, "B", 9)
    pdf.cell(0, 5, "Bill to", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(body, "", 9)
    for line in billed[:5]:
        pdf.set_x(110)
        pdf.multi_cell(0, 4.5, pdf.text_of(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(bottom, pdf.get_y()) + 6)

    pdf.set_font(body, "", 9)
    with pdf.table(
        col_widths=(92, 28, 34, 36),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        line_height=5.5,
        headings_style=FontFace(emphasis="BOLD", fill_color=(240, 240, 240)),
    ) as table:
        head = table.row()
        for title in ("Description", "Qty", "Unit price", "Amount"):
            head.cell(title)
        for line in invoice.lines.all():
            row = table.row()
            period = ""
            if line.period_start and line.period_end:
                period = f"\n{line.period_start:%Y-%m-%d} - {line.period_end:%Y-%m-%d}"
            row.cell(pdf.text_of(line.description + period))
            row.cell(grouped(line.quantity))
            row.cell(
                pdf.text_of(format_unit_amount(line.unit_amount, currency))
                if not line.breakdown or len(line.breakdown) == 1
                else "tiered"
            )
            row.cell(pdf.text_of(pdf.money(line.amount, currency)))
            if len(line.breakdown) > 1:
                for part in line.breakdown:
                    sub = table.row()
                    first, last = part.get("first"), part.get("last")
                    flat = int(part.get("flat_amount") or 0)
                    label = (
                        f"    {grouped(first)} - {grouped(last)}" if last else f"    {grouped(first)} and up"
                    )
                    label += f" (+{pdf.money(flat, currency)} flat)" if flat else ""
                    sub.cell(pdf.text_of(label))
                    sub.cell(grouped(part.get("quantity") or 0))
                    sub.cell(pdf.text_of(format_unit_amount(Decimal(part.get("unit_amount") or 0), currency)))
                    sub.cell("")

    pdf.ln(4)
    totals = [("Subtotal", invoice.subtotal)]
    discounts, taxes = list(invoice.discounts.all()), list(invoice.taxes.all())
    totals += [(f"Discount ({d.coupon_code})", -d.amount) for d in discounts]
    if invoice.discount and not discounts:  # a provider's invoice: its discount as reported
        totals.append(("Discount", -invoice.discount))
    if invoice.credits_applied:
        totals.append(
            (
                f"Credits applied ({grouped(Decimal(credits_display(invoice.credits_used)))} credits)",
                -invoice.credits_applied,
            )
        )
    for tax in taxes:
        included = ", included" if tax.inclusive else ""
        totals.append((f"Tax ({tax.name}, {decimal_text(tax.percent)}%{included})", tax.amount))
    if invoice.tax and not taxes:
        totals.append(("Tax", invoice.tax))
    totals.append(("Total", invoice.total))
    if invoice.amount_paid:
        totals.append(("Paid", -invoice.amount_paid))
    if invoice.amount_credited:
        totals.append(("Credited", -invoice.amount_credited))
    totals.append(("Amount due", invoice.amount_due))
    for label, amount in totals:
        strong = label in ("Total", "Amount due")
        pdf.set_font(body, "B" if strong else "", 10 if strong else 9)
        pdf.cell(84)
        pdf.cell(70, 6, pdf.text_of(label))
        pdf.cell(
            36, 6, pdf.text_of(pdf.money(amount, currency)), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )
    notes = sorted(invoice.credit_notes.all(), key=lambda note: note.pk)
    if notes:
        pdf.ln(4)
        pdf.set_font(body, "B", 9)
        pdf.cell(0, 6, "Credit notes", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(body, "", 9)
        for note in notes:
            how = (
                "refunded" if note.refund_amount else ("credited" if note.credit_amount else "off amount due")
            )
            if note.status == "refund_pending":
                how = "refund pending"
            pdf.cell(60, 5, pdf.text_of(note.number))
            pdf.cell(28, 5, f"{note.created_at:%Y-%m-%d}")
            pdf.cell(66, 5, pdf.text_of(f"{note.get_reason_display()}, {how}"))
            pdf.cell(
                36,
                5,
                pdf.text_of(pdf.money(-note.amount, currency)),
                align="R",
                new_x=XPos.LMARGIN,
                new_y=YPos.NEXT,
            )
    pdf.ln(6)
    pdf.set_font(body, "", 8)
    pdf.set_text_color(110)
    pdf.cell(0, 4, f"Amounts in {currency.upper()}.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def invoice_pdf_response(*, invoice: Invoice, tenant) -> HttpResponse:
    """The invoice's PDF as a download named after its number (the API's and the pages' PDF views)."""
    from tenants.models import TenantLogo

    logo = TenantLogo.objects.filter(tenant_id=tenant.pk).values_list("png", flat=True).first()
    document = invoice_pdf(
        invoice=invoice,
        seller_name=tenant.name,
        seller_address=getattr(tenant, "invoice_address", ""),
        seller_logo=bytes(logo) if logo else None,
    )
    response = HttpResponse(document, content_type="application/pdf")
    name = invoice.number or f"draft-{invoice.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    return response
