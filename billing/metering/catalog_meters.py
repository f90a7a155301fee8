"""The catalog's `meters:` section (parse, apply, export), registered with billing.tiers.catalog when
the app starts: meters are metering's models, the catalog file is the tiers app's."""

from __future__ import annotations

from billing.metering.models import Aggregation, Meter
from billing.metering.services import meter_create
from billing.tiers.catalog.parse import CODE_RE, _bool, _check_keys, _mapping, _str
from billing.tiers.catalog.sections import CatalogSection, ImportReport
from billing.tiers.exceptions import CatalogError
from billing.tiers.models import Feature, FeatureKind
from billing.tiers.yamlload import LineDict

METER_KEYS = {
    "name",
    "event_type",
    "aggregation",
    "value_property",
    "filters",
    "allow_negative",
    "unit",
    "feature",
}


def meters_parse(ctx, doc, features: dict) -> dict[str, dict]:
    raw = doc.get("meters", LineDict())
    _mapping(ctx, raw, line=doc.line_of("meters"), path="meters")
    meters = {}
    for code, spec in raw.items():
        path, line = f"meters.{code}", raw.line_of(code)
        if not isinstance(code, str) or not CODE_RE.match(code):
            ctx.fail("meter codes are lowercase letters, digits, '-' and '_'", line=line, path=path)
        spec = _mapping(ctx, spec, line=line, path=path)
        _check_keys(ctx, spec, METER_KEYS, path)
        aggregation = _str(ctx, spec, "aggregation", path, required=True)
        if aggregation not in Aggregation.values:
            ctx.fail(f"must be one of {', '.join(Aggregation.values)}", line=spec.line_of("aggregation"),
                     path=f"{path}.aggregation")  # fmt: skip
        value_property = _str(ctx, spec, "value_property", path, max_length=100)
        if aggregation == Aggregation.UNIQUE_COUNT and not value_property:
            ctx.fail("a unique_count meter names the property whose distinct values it counts",
                     line=spec.line, path=f"{path}.value_property")  # fmt: skip
        filters = spec.get("filters", {})
        if not isinstance(filters, dict) or not all(
            isinstance(v, str | int | float | bool) or (isinstance(v, list) and v) for v in filters.values()
        ):
            ctx.fail("maps a property to a value or a non-empty list of values", line=spec.line_of("filters")
                     if "filters" in spec else spec.line, path=f"{path}.filters")  # fmt: skip
        feature = _str(ctx, spec, "feature", path, max_length=64) or None
        if feature is not None:
            kind = features.get(feature, {}).get("kind") or (
                Feature.objects.filter(code=feature).values_list("kind", flat=True).first()
            )
            if kind != FeatureKind.METERED:
                ctx.fail("must name a metered feature", line=spec.line_of("feature"), path=f"{path}.feature")
        meters[code] = {
            "line": line,
            "name": _str(ctx, spec, "name", path, default=code),
            "event_type": _str(ctx, spec, "event_type", path, required=True, max_length=100),
            "aggregation": aggregation,
            "value_property": value_property,
            "filters": dict(filters),
            "allow_negative": _bool(ctx, spec, "allow_negative", path, default=False),
            "unit": _str(ctx, spec, "unit", path, max_length=32),
            "feature_code": feature,
        }
    return meters


def meters_apply(meters: dict | None, report: ImportReport, filename: str) -> None:
    existing = {m.code: m for m in Meter.objects.select_related("feature")}
    for code, spec in (meters or {}).items():
        values = {k: v for k, v in spec.items() if k != "line"}
        meter = existing.get(code)
        if meter is None:
            meter_create(code=code, **values)
            report.created["meters"] += 1
            continue
        stored = {"event_type": meter.event_type, "aggregation": meter.aggregation,
                  "value_property": meter.value_property, "filters": meter.filters,
                  "allow_negative": meter.allow_negative,
                  "feature_code": meter.feature.code if meter.feature else None}  # fmt: skip
        changed = [k for k, v in stored.items() if values[k] != v]
        if changed:
            raise CatalogError(
                f"{filename}:{spec['line']}: meters.{code}: a meter's definition is fixed once created "
                f"({', '.join(changed)} differ); give the new definition a new code",
                details={"file": filename, "line": spec["line"], "field": f"meters.{code}"},
            )


def meters_export() -> dict:
    meters = {}
    for meter in Meter.objects.select_related("feature").order_by("code"):
        entry = {"name": meter.name, "event_type": meter.event_type, "aggregation": meter.aggregation}
        if meter.value_property:
            entry["value_property"] = meter.value_property
        if meter.filters:
            entry["filters"] = meter.filters
        if meter.allow_negative:
            entry["allow_negative"] = True
        if meter.unit:
            entry["unit"] = meter.unit
        if meter.feature:
            entry["feature"] = meter.feature.code
        meters[meter.code] = entry
    return meters


def price_meters_check(ctx, parsed: dict) -> None:
    """Every usage price names a meter of this file or one that exists already."""
    known = None
    for code, line, path in ctx.price_meters:
        if code in (parsed.get("meters") or {}):
            continue
        if known is None:
            known = set(Meter.objects.values_list("code", flat=True))
        if code not in known:
            ctx.fail(f"no meter '{code}' (define it under meters:)", line=line, path=path)


SECTION = CatalogSection(
    key="meters", parse=meters_parse, apply=meters_apply, export=meters_export, check=price_meters_check
)
