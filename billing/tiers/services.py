"""Edits of the catalog from the console, through the YAML import and nothing else.

Every change (a tier saved, a price added or deactivated, a file pasted) is made to the catalog as
a document (the export, as data), and that document goes through `catalog_import`: the same
validation, the same rule that a price's terms never change (new terms are a new price, the old one
is deactivated), the same refusal of a changed meter, the same one-transaction apply. An error
names the field's path in the document (`tiers[2].prices[1].tiers[0].up_to`) so that a form can
put it beside the input it came from.

A dry run applies the document inside a transaction that is then rolled back, so what a preview
shows (the diff of the export, the pricing page) is what applying would give, by the same code."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from django.db import transaction

from billing.tiers.catalog import ImportReport, catalog_export, catalog_import
from billing.tiers.exceptions import CatalogError
from billing.tiers.models import Price, Tier

EDITOR_FILENAME = "editor"


class _RollBack(Exception):
    """Raised inside a dry run's transaction to undo it."""


@dataclass
class CatalogPreview:
    """What applying a document would do: the import's report, the export before and after as a
    unified diff (empty: nothing would change), and what `inspect` returned inside the dry run."""

    report: ImportReport
    diff: str
    inspected: Any = None

    @property
    def changed(self) -> bool:
        return bool(self.diff) or self.report.changed


def catalog_document() -> dict:
    """The stored catalog (platform tiers, features, meters) as the import format's data."""
    return yaml.safe_load(catalog_export()) or {}


def document_text(document: dict) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


def _lock_catalog() -> None:
    # two editors saving at once: the second reads the catalog after the first has committed
    list(Tier.objects.filter(creator__isnull=True).select_for_update().values_list("pk", flat=True))


def catalog_dry_run(
    *, text: str, filename: str = "<catalog>", inspect: Callable[[], Any] | None = None
) -> CatalogPreview:
    """Apply `text` and undo it: the report, the export's diff and `inspect()` as it saw the result.
    Raises CatalogError as the import would."""
    holder: dict = {}
    try:
        with transaction.atomic():
            before = catalog_export()
            holder["report"] = catalog_import(text=text, filename=filename, notify=False)
            after = catalog_export()
            holder["diff"] = "".join(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    after.splitlines(keepends=True),
                    fromfile="stored catalog",
                    tofile=filename,
                )
            )
            holder["inspected"] = inspect() if inspect is not None else None
            raise _RollBack
    except _RollBack:
        pass
    return CatalogPreview(report=holder["report"], diff=holder["diff"], inspected=holder["inspected"])


def catalog_edit(
    *,
    edit: Callable[[dict], None],
    dry_run: bool = False,
    inspect: Callable[[], Any] | None = None,
) -> CatalogPreview | ImportReport:
    """Change the stored catalog's document with `edit(document)` (in place) and import it.
    `dry_run`: change nothing, return the preview."""
    if dry_run:
        with transaction.atomic():
            document = catalog_document()
            edit(document)
            return catalog_dry_run(text=document_text(document), filename=EDITOR_FILENAME, inspect=inspect)
    with transaction.atomic():
        _lock_catalog()
        document = catalog_document()
        edit(document)
        return catalog_import(text=document_text(document), filename=EDITOR_FILENAME)


# --- edits of the document (each names the path of what it touched, for error messages) ------


def tier_index(document: dict, code: str) -> int:
    for index, tier in enumerate(document.get("tiers") or []):
        if tier.get("code") == code:
            return index
    raise CatalogError(f"No tier '{code}' in the catalog.", details={"field": "tiers"})


def document_tier_set(document: dict, *, code: str, values: dict, create: bool) -> str:
    """Set a tier's entry (`values` in the import format: name, description, public, default, sort,
    credits_per_period, features). `create`: a new tier at the end (its code must be new).
    Returns the tier's path."""
    tiers = document.setdefault("tiers", [])
    if create:
        if any(t.get("code") == code for t in tiers):
            raise CatalogError(
                f"A tier '{code}' exists already.", details={"field": f"tiers[{len(tiers)}].code"}
            )
        entry = {"code": code}
        tiers.append(entry)
        index = len(tiers) - 1
    else:
        index = tier_index(document, code)
        entry = tiers[index]
        entry.pop("credits_per_period", None)
    entry.update({key: value for key, value in values.items() if value is not None})
    if values.get("default"):
        for other in tiers:
            if other is not entry:
                other["default"] = False
    return f"tiers[{index}]"


def document_price_add(document: dict, *, tier_code: str, price: dict) -> str:
    """Append a price (import format) to a tier; returns the price's path."""
    index = tier_index(document, tier_code)
    prices = document["tiers"][index].setdefault("prices", [])
    prices.append(price)
    return f"tiers[{index}].prices[{len(prices) - 1}]"


def document_price_remove(document: dict, *, tier_code: str, price: Price) -> None:
    """Drop an active price from its tier's list: the import deactivates it. The export lists a
    tier's active prices by id, so the price's position among them is its entry."""
    index = tier_index(document, tier_code)
    active = list(
        Price.objects.filter(tier__code=tier_code, tier__creator__isnull=True, active=True)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if price.pk not in active:
        raise CatalogError("This price is not active on this tier.", details={"field": "price"})
    del document["tiers"][index]["prices"][active.index(price.pk)]
