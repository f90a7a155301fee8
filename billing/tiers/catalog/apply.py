"""A parsed catalog applied in one transaction: features and tiers updated in place, prices never
edited (changed terms: the old one deactivated, a new one made), sections applied, and the
entitlements told once the change is committed."""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from billing.tiers.catalog.parse import catalog_parse
from billing.tiers.catalog.sections import _SECTIONS, ImportReport
from billing.tiers.exceptions import CatalogError
from billing.tiers.models import Feature, Price, Tier, TierFeature
from billing.tiers.signals import catalog_changed
from kernel.decimals import decimal_text


def _update(instance, values: dict) -> bool:
    changed = [name for name, value in values.items() if getattr(instance, name) != value]
    for name in changed:
        setattr(instance, name, values[name])
    if changed:
        instance.save(update_fields=changed + (["updated_at"] if hasattr(instance, "updated_at") else []))
    return bool(changed)


def _terms(price: Price | dict) -> tuple:
    get = price.get if isinstance(price, dict) else lambda k: getattr(price, k)
    return (
        get("currency"),
        get("unit_amount"),
        get("interval"),
        get("model"),
        get("tiers") or [],
        get("package_size"),
        get("trial_days"),
        decimal_text(get("unit_amount_decimal")) if isinstance(get("unit_amount_decimal"), Decimal)
        else get("unit_amount_decimal"),
        get("package_rounding"),
        get("meter"),
    )  # fmt: skip


def _apply_prices(tier: Tier, specs: list[dict], report: ImportReport) -> None:
    active = list(tier.prices.filter(active=True).order_by("id")) if tier.pk else []
    kept: set[int] = set()
    for spec in specs:
        match = None
        for price in active:
            if price.pk in kept:
                continue
            if (spec["code"] and price.code == spec["code"]) or (
                not spec["code"] and not price.code and _terms(price) == _terms(spec)
            ):
                match = price
                break
        if match is not None and _terms(match) == _terms(spec):
            kept.add(match.pk)
            continue
        if match is not None:  # same code, new terms: never edit a price, replace it
            Price.objects.filter(pk=match.pk).update(active=False)
            kept.add(match.pk)
            report.deactivated_prices += 1
        Price.objects.create(tier=tier, **spec)
        report.created["prices"] += 1
    for price in active:
        if price.pk not in kept:
            Price.objects.filter(pk=price.pk).update(active=False)
            report.deactivated_prices += 1


def catalog_apply(*, catalog: dict, notify: bool = True) -> ImportReport:
    """Apply a parsed catalog in one transaction. `notify=False` for a dry run that is rolled back:
    nothing changed for anyone, so no cache is invalidated (a live preview refreshes per keystroke)."""
    report = ImportReport()
    with transaction.atomic():
        features = {f.code: f for f in Feature.objects.select_for_update()}
        for code, values in catalog["features"].items():
            if code in features:
                report.updated["features"] += _update(features[code], values)
            else:
                features[code] = Feature.objects.create(code=code, **values)
                report.created["features"] += 1

        tiers = {t.code: t for t in Tier.objects.filter(creator__isnull=True).select_for_update()}
        new_default = next((t["code"] for t in catalog["tiers"] if t["is_default"]), None)
        if new_default:  # clear the old default first: one default tier is a database constraint
            report.updated["tiers"] += (
                Tier.objects.filter(is_default=True).exclude(code=new_default).update(is_default=False)
            )
            for tier in tiers.values():
                if tier.code != new_default:
                    tier.is_default = False
        for spec in catalog["tiers"]:
            values = {k: spec[k] for k in ("name", "description", "is_public", "is_default", "sort_order",
                                           "credit_allowance")}  # fmt: skip
            tier = tiers.get(spec["code"])
            if tier is None:
                tier = tiers[spec["code"]] = Tier.objects.create(code=spec["code"], **values)
                report.created["tiers"] += 1
            else:
                report.updated["tiers"] += _update(tier, values)
            _apply_prices(tier, spec["prices"], report)

            existing = {tf.feature.code: tf for tf in tier.tier_features.select_related("feature")}
            for f_code, values in spec["features"].items():
                tf = existing.pop(f_code, None)
                if tf is None:
                    TierFeature.objects.create(tier=tier, feature=features[f_code], **values)
                    report.updated["tier_features"] += 1
                else:
                    report.updated["tier_features"] += _update(tf, values)
            for tf in existing.values():
                tf.delete()
                report.updated["tier_features"] += 1
        for section in _SECTIONS.values():
            section.apply(catalog.get(section.key), report, catalog.get("filename", "<catalog>"))
        in_file = {t["code"] for t in catalog["tiers"]}
        report.tiers_not_in_file = sorted(code for code in tiers if code not in in_file)
        if (
            report.changed and notify
        ):  # now, and again once committed (see memberships.services._notify_changed)
            catalog_changed.send(sender=Tier)
            transaction.on_commit(lambda: catalog_changed.send(sender=Tier))
    return report


def catalog_import(*, text: str, filename: str = "<catalog>", notify: bool = True) -> ImportReport:
    """Validate the whole file first, then apply it in one transaction."""
    catalog = catalog_parse(text=text, filename=filename)
    catalog["filename"] = filename
    try:
        return catalog_apply(catalog=catalog, notify=notify)
    except IntegrityError as exc:  # e.g. a price code still active on another tier
        raise CatalogError(
            f"{filename}: conflicts with the stored catalog: {exc}", details={"file": filename}
        ) from exc
