"""The catalog editor for owners and admins: `/catalog/` (tiers, their prices and features), a
tier's form, a new price's form, a price's quote calculator, a live preview of the pricing page,
and the catalog as YAML (download; paste or upload, see the diff, then apply).

Every change goes through the catalog import (billing/tiers/services.py): the same validation and
the same rules as a YAML file (a price's terms never change: new terms are a new price). A change
it refuses is shown beside the field it names and changes nothing. "Preview" applies the change
inside a transaction that is rolled back and renders the pricing page's own template from it, with
the diff of the catalog file; with htmx the preview pane refreshes as the form is edited."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import role_required
from accounts.roles import Role
from billing.invoicing.exceptions import InvoicingError
from billing.invoicing.rating import breakdown_rows
from billing.invoicing.selectors import price_quote
from billing.tiers.catalog import ImportReport, catalog_export, catalog_import
from billing.tiers.exceptions import CatalogError
from billing.tiers.selectors import tier_list
from billing.tiers.services import (
    CatalogPreview,
    catalog_document,
    catalog_dry_run,
    catalog_edit,
    document_price_add,
    document_price_remove,
    document_tier_set,
    tier_index,
)
from billing.tiers.views import pricing_context
from console.catalog.forms import (
    PriceForm,
    QuoteForm,
    TierForm,
    YamlForm,
    catalog_error_text,
    form_errors_from,
)
from console.catalog.selectors import (
    catalog_features,
    catalog_meters,
    catalog_price_get,
    catalog_price_unit,
    catalog_tiers,
)

EDITOR_ROLES = (Role.OWNER, Role.ADMIN)


def _pricing_html() -> str:
    """The public pricing page's body as the catalog stands now (inside a dry run: as it would)."""
    return render_to_string(
        "billing/_pricing.html", {**pricing_context(tier_list(public_only=True)), "preview": True}
    )


def _report_text(report: ImportReport) -> str:
    parts = [f"{n} {kind} created" for kind, n in report.created.items() if n]
    parts += [f"{n} {kind.replace('_', ' ')} updated" for kind, n in report.updated.items() if n]
    if report.deactivated_prices:
        parts.append(f"{report.deactivated_prices} price(s) deactivated")
    return ", ".join(parts) or "nothing changed"


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


@require_GET
@role_required(*EDITOR_ROLES)
def catalog_home(request):
    tiers = catalog_tiers()
    return render(request, "console/catalog/home.html", {"tiers": tiers, "pricing": _pricing_html()})


@require_GET
@role_required(*EDITOR_ROLES)
def catalog_preview(request):
    """The pricing page as it stands (the pane's first content)."""
    return HttpResponse(_pricing_html())


@require_GET
@role_required(*EDITOR_ROLES)
def catalog_export_download(request):
    response = HttpResponse(catalog_export(), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="catalog.yaml"'
    return response


def _edit_page(request, *, form, template: str, context: dict, edit, prefix_holder: dict, success: str):
    """POST of an editing form: "preview" (dry run: the pricing page and the diff) or save.
    `edit(document)` changes the catalog document and sets prefix_holder["path"]."""
    preview: CatalogPreview | None = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            wants_preview = "preview" in request.POST
            try:
                result = catalog_edit(edit=edit, dry_run=wants_preview, inspect=_pricing_html)
            except CatalogError as error:
                form_errors_from(form, error, prefix=prefix_holder.get("path"))
                status = 400
            else:
                if wants_preview:
                    preview = result
                else:
                    messages.success(request, f"{success} ({_report_text(result)}).")
                    return redirect(context["back"])
        else:
            status = 400
        if _is_htmx(request):
            return render(
                request, "console/catalog/_preview.html", {"preview": preview, "form": form}, status=200
            )
    return render(request, template, {**context, "form": form, "preview": preview}, status=status)


@require_http_methods(["GET", "POST"])
@role_required(*EDITOR_ROLES)
def tier_new(request):
    form = TierForm(request.POST or None, features=catalog_features(), creating=True)
    holder: dict = {}

    def edit(document):
        code = form.cleaned_data["code"]
        holder["path"] = document_tier_set(document, code=code, values=form.values(), create=True)

    return _edit_page(
        request,
        form=form,
        template="console/catalog/tier_form.html",
        context={"creating": True, "back": "/catalog/"},
        edit=edit,
        prefix_holder=holder,
        success="Tier created",
    )


@require_http_methods(["GET", "POST"])
@role_required(*EDITOR_ROLES)
def tier_edit(request, code: str):
    document = catalog_document()
    try:
        entry = document["tiers"][tier_index(document, code)]
    except (CatalogError, KeyError):
        raise Http404 from None
    form = TierForm(request.POST or None, features=catalog_features(), creating=False, entry=entry)
    holder: dict = {}

    def edit(doc):
        holder["path"] = document_tier_set(doc, code=code, values=form.values(), create=False)

    return _edit_page(
        request,
        form=form,
        template="console/catalog/tier_form.html",
        context={"creating": False, "tier": entry, "back": f"/catalog/#tier-{code}"},
        edit=edit,
        prefix_holder=holder,
        success=f"Tier {code} saved",
    )


@require_http_methods(["GET", "POST"])
@role_required(*EDITOR_ROLES)
def price_new(request, code: str):
    document = catalog_document()
    try:
        entry = document["tiers"][tier_index(document, code)]
    except (CatalogError, KeyError):
        raise Http404 from None
    form = PriceForm(request.POST or None, meters=catalog_meters())
    holder: dict = {}

    def edit(doc):
        holder["path"] = document_price_add(doc, tier_code=code, price=form.price)

    return _edit_page(
        request,
        form=form,
        template="console/catalog/price_form.html",
        context={"tier": entry, "back": f"/catalog/#tier-{code}"},
        edit=edit,
        prefix_holder=holder,
        success=f"Price added to {code}",
    )


@require_POST
@role_required(*EDITOR_ROLES)
def price_deactivate(request, price_id: str):
    price = catalog_price_get(price_id=price_id)
    if not price.active:
        messages.info(request, "That price was already inactive.")
        return redirect(f"/catalog/#tier-{price.tier.code}")
    try:
        report = catalog_edit(
            edit=lambda doc: document_price_remove(doc, tier_code=price.tier.code, price=price)
        )
    except CatalogError as error:
        messages.error(request, f"The price was not deactivated: {error.message}")
    else:
        messages.success(request, f"Price {price.code or price.pk} deactivated ({_report_text(report)}).")
    return redirect(f"/catalog/#tier-{price.tier.code}")


@require_GET
@role_required(*EDITOR_ROLES)
def price_detail(request, price_id: str):
    """A price's terms and the quote calculator (the API's GET /api/v1/prices/{code}/quote)."""
    price = catalog_price_get(price_id=price_id)
    form = QuoteForm(request.GET or None)
    quote = None
    if price.code and price.active and form.is_valid():
        try:
            _, rated = price_quote(code=price.code, quantity=form.cleaned_data["quantity"])
        except InvoicingError as error:
            form.add_error("quantity", error.message)
        else:
            quote = {"rated": rated, "rows": breakdown_rows(rated)}
    context = {"price": price, "form": form, "quote": quote, "unit": catalog_price_unit(price=price)}
    if _is_htmx(request):
        return render(request, "console/catalog/_quote.html", context)
    return render(request, "console/catalog/price.html", context, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@role_required(*EDITOR_ROLES)
def catalog_import_page(request):
    """Paste or upload a catalog: "Preview" shows the diff and changes nothing; "Apply" imports."""
    form = YamlForm(request.POST or None, request.FILES or None)
    preview, error, status = None, None, 200
    if request.method == "POST":
        if form.is_valid():
            text, filename = form.cleaned_data["text"], form.cleaned_data["filename"]
            try:
                if request.POST.get("step") == "apply":
                    report = catalog_import(text=text, filename=filename)
                    messages.success(request, f"Catalog imported ({_report_text(report)}).")
                    return redirect("/catalog/")
                preview = catalog_dry_run(text=text, filename=filename, inspect=_pricing_html)
            except CatalogError as exc:
                error, status = exc, 400
            form = YamlForm(initial={"text": text})
        else:
            status = 400
    lines = []
    if error is not None and form.initial.get("text") and (error.details or {}).get("line"):
        bad = error.details["line"]  # the lines around it, that one marked
        source = form.initial["text"].splitlines()
        lines = [(n, source[n - 1], n == bad) for n in range(max(1, bad - 4), min(len(source), bad + 4) + 1)]
    return render(
        request,
        "console/catalog/import.html",
        {
            "form": form,
            "preview": preview,
            "error": error,
            "error_text": catalog_error_text(error) if error is not None else "",
            "lines": lines,
        },
        status=status,
    )
