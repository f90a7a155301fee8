"""The catalog as YAML: import (idempotent) and export.

File format (examples in config/tiers/):

    currency: usd                      # default currency of the prices below
    features:
      private_projects: {name: Private projects, kind: limit, unit: project}
      build_minutes:    {name: Build minutes, kind: metered, unit: minute}
      sso:              {name: SSO, kind: boolean}
      api_requests:     {name: API requests, kind: rate, unit: request}
    tiers:
      - code: community
        name: Community
        default: true                  # exactly one tier: the free fallback
        public: true                   # listed on the pricing page (default true)
        features:
          private_projects: 0          # limit/metered: a number, `unlimited`, or false (off)
          build_minutes: 1000
          sso: false                   # boolean: true/false
          api_requests: 60/minute      # rate: N/second|minute|hour|day, or false
      - code: pro
        name: Pro
        credits_per_period: 500        # credits granted each billing period (they expire with it)
        prices:
          - {code: pro-monthly, unit_amount: 1900, interval: month, trial_days: 14}
          - {code: pro-yearly, unit_amount: 19000, interval: year}
          # model: flat | per_seat | graduated | volume | package (+ tiers: [...] / package_size)

    meters:                            # usage meters (billing/metering), by code
      build-minutes: {event_type: build.finished, aggregation: sum, value_property: minutes,
                      feature: build_minutes, unit: minute}
      # aggregation: count | sum | max | min | unique_count | latest; filters: {property: value | [values]}

Import rules: features and tiers are matched by code and updated in place; a tier's features are
replaced by the file's; prices are matched by `code` (or, without one, by their terms). A price
whose terms changed is never edited: the old one is deactivated and a new one created; active
prices no longer in the file are deactivated. Tiers missing from the file are left alone and
reported. A meter's definition is fixed once created (its rollups were aggregated by it): a file
that changes one is refused (give the new definition a new code); new meters aggregate the events
already stored. Re-importing the same file writes nothing. Any error names file, line and field and
the whole import changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import yaml
from django.db import IntegrityError, transaction

from billing.tiers.exceptions import CatalogError
from billing.tiers.models import (
    Feature,
    FeatureKind,
    Interval,
    PackageRounding,
    Price,
    PricingModel,
    Tier,
    TierFeature,
)
from billing.tiers.signals import catalog_changed
from billing.tiers.yamlload import LineDict, LineList, load
from kernel.decimals import decimal_text

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CURRENCY_RE = re.compile(r"^[a-z]{3}$")
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
WINDOW_NAMES = {seconds: name for name, seconds in WINDOWS.items()}


@dataclass
class ImportReport:
    created: dict = field(default_factory=lambda: {"features": 0, "tiers": 0, "prices": 0, "meters": 0})
    updated: dict = field(default_factory=lambda: {"features": 0, "tiers": 0, "tier_features": 0})
    deactivated_prices: int = 0
    tiers_not_in_file: list = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(sum(self.created.values()) + sum(self.updated.values()) + self.deactivated_prices)


# --- parsing and validation ----------------------------------------------------------------------


class _Ctx:
    def __init__(self, filename: str):
        self.filename = filename
        self.price_meters: list[tuple[str, int, str]] = []  # (meter code, line, path) for sections' checks

    def fail(self, message: str, *, line: int, path: str):
        raise CatalogError(
            f"{self.filename}:{line}: {path}: {message}",
            details={"file": self.filename, "line": line, "field": path},
        )


def _mapping(ctx, value, *, line, path) -> LineDict:
    if not isinstance(value, dict):
        ctx.fail("must be a mapping", line=line, path=path)
    return value


def _check_keys(ctx, mapping: LineDict, allowed: set, path: str):
    for key in mapping:
        if key not in allowed:
            ctx.fail(
                f"unknown key (allowed: {', '.join(sorted(allowed))})",
                line=mapping.line_of(key),
                path=f"{path}.{key}",
            )


def _str(ctx, mapping, key, path, *, required=False, default="", max_length=200, pattern=None):
    if key not in mapping:
        if required:
            ctx.fail("is required", line=mapping.line, path=f"{path}.{key}")
        return default
    value = mapping[key]
    if not isinstance(value, str) or len(value) > max_length or (pattern and not pattern.match(value)):
        hint = f" matching {pattern.pattern}" if pattern else ""
        ctx.fail(
            f"must be a string of at most {max_length} characters{hint}",
            line=mapping.line_of(key),
            path=f"{path}.{key}",
        )
    return value


def _int(ctx, mapping, key, path, *, default=None, minimum=0, allow_null=False):
    if key not in mapping:
        return default
    value = mapping[key]
    if value is None and allow_null:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        ctx.fail(f"must be an integer >= {minimum}", line=mapping.line_of(key), path=f"{path}.{key}")
    return value


def _decimal(ctx, mapping, key, path):
    """A non-negative amount with at most 12 decimals, as a Decimal string (None when absent). YAML
    floats are read through their written digits (str), never used as floats."""
    if key not in mapping or mapping[key] is None:
        return None
    value = mapping[key]
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        amount = None
    if (
        amount is None
        or not amount.is_finite()
        or amount < 0
        or -amount.as_tuple().exponent > 12
        or amount >= 10**12
    ):
        ctx.fail(
            "must be a number >= 0 with at most 12 decimals", line=mapping.line_of(key), path=f"{path}.{key}"
        )
    return decimal_text(amount)


def _credits(ctx, mapping, key, path):
    """Credits (at most 6 decimals) as integer micro-credits; absent: None."""
    from decimal import Decimal

    if key not in mapping:
        return None
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        ctx.fail("must be a number of credits >= 0", line=mapping.line_of(key), path=f"{path}.{key}")
    micros = Decimal(str(value)) * 1_000_000
    if micros != micros.to_integral_value():
        ctx.fail("credits have at most 6 decimal places", line=mapping.line_of(key), path=f"{path}.{key}")
    return int(micros)


def _bool(ctx, mapping, key, path, *, default):
    if key not in mapping:
        return default
    if not isinstance(mapping[key], bool):
        ctx.fail("must be true or false", line=mapping.line_of(key), path=f"{path}.{key}")
    return mapping[key]


def _parse_features(ctx, doc) -> dict[str, dict]:
    raw = doc.get("features", LineDict())
    _mapping(ctx, raw, line=doc.line_of("features"), path="features")
    features = {}
    for code, spec in raw.items():
        path = f"features.{code}"
        line = raw.line_of(code)
        if not isinstance(code, str) or not CODE_RE.match(code):
            ctx.fail("feature codes are lowercase letters, digits, '-' and '_'", line=line, path=path)
        spec = _mapping(ctx, spec, line=line, path=path)
        _check_keys(ctx, spec, {"name", "kind", "unit", "description"}, path)
        kind = _str(ctx, spec, "kind", path, required=True)
        if kind not in FeatureKind.values:
            ctx.fail(
                f"must be one of {', '.join(FeatureKind.values)}",
                line=spec.line_of("kind"),
                path=f"{path}.kind",
            )
        features[code] = {
            "name": _str(ctx, spec, "name", path, default=code.replace("_", " ").capitalize()),
            "kind": kind,
            "unit": _str(ctx, spec, "unit", path, max_length=32),
            "description": _str(ctx, spec, "description", path, max_length=2000),
        }
    return features


def _parse_feature_value(ctx, kind: str, value, *, line: int, path: str) -> dict:
    """→ TierFeature field values."""
    off = {"enabled": False, "limit_value": None, "rate_limit": None, "rate_window_seconds": None}
    if kind == FeatureKind.BOOLEAN:
        if not isinstance(value, bool):
            ctx.fail("a boolean feature takes true or false", line=line, path=path)
        return {**off, "enabled": value}
    if value is False:
        return off
    if kind in (FeatureKind.LIMIT, FeatureKind.METERED):
        if value == "unlimited":
            return {**off, "enabled": True}
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            ctx.fail("a limit is an integer >= 0, 'unlimited', or false", line=line, path=path)
        return {**off, "enabled": True, "limit_value": value}
    match = RATE_RE.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) < 1:
        ctx.fail(
            "a rate looks like '60/minute' (per second, minute, hour or day), or false", line=line, path=path
        )
    return {
        **off,
        "enabled": True,
        "rate_limit": int(match.group(1)),
        "rate_window_seconds": WINDOWS[match.group(2)],
    }


def _parse_price(ctx, spec, *, path: str, line: int, currency: str) -> dict:
    spec = _mapping(ctx, spec, line=line, path=path)
    allowed = {
        "code", "unit_amount", "unit_amount_decimal", "currency", "interval", "model", "tiers",
        "package_size", "package_rounding", "meter", "trial_days",
    }  # fmt: skip
    _check_keys(ctx, spec, allowed, path)
    price = {
        "code": _str(ctx, spec, "code", path, max_length=64, pattern=CODE_RE),
        "unit_amount": _int(ctx, spec, "unit_amount", path, default=0),
        "unit_amount_decimal": _decimal(ctx, spec, "unit_amount_decimal", path),
        "package_rounding": _str(ctx, spec, "package_rounding", path, default=PackageRounding.UP),
        "meter": _str(ctx, spec, "meter", path, max_length=64, pattern=CODE_RE),
        "currency": _str(ctx, spec, "currency", path, default=currency, pattern=CURRENCY_RE).lower(),
        "interval": _str(ctx, spec, "interval", path, default=Interval.MONTH),
        "model": _str(ctx, spec, "model", path, default=PricingModel.FLAT),
        "package_size": _int(ctx, spec, "package_size", path, minimum=1),
        "trial_days": _int(ctx, spec, "trial_days", path, default=0),
        "tiers": [],
    }
    if not CURRENCY_RE.match(price["currency"]):
        ctx.fail(
            "a currency is a lowercase ISO-4217 code such as usd",
            line=spec.line_of("currency"),
            path=f"{path}.currency",
        )
    if price["interval"] not in Interval.values:
        ctx.fail(
            f"must be one of {', '.join(Interval.values)}",
            line=spec.line_of("interval"),
            path=f"{path}.interval",
        )
    if price["model"] not in PricingModel.values:
        ctx.fail(
            f"must be one of {', '.join(PricingModel.values)}",
            line=spec.line_of("model"),
            path=f"{path}.model",
        )
    if price["package_rounding"] not in PackageRounding.values:
        ctx.fail("must be up or down", line=spec.line_of("package_rounding"), path=f"{path}.package_rounding")
    if price["meter"]:
        if price["model"] in (PricingModel.FLAT, PricingModel.PER_SEAT):
            ctx.fail(
                "a usage price (with a meter) is per_unit, graduated, volume or package",
                line=spec.line_of("model") if "model" in spec else spec.line,
                path=f"{path}.model",
            )
        if price["interval"] == Interval.ONE_TIME:
            ctx.fail(
                "a usage price is billed each month or year",
                line=spec.line_of("interval"),
                path=f"{path}.interval",
            )
        ctx.price_meters.append((price["meter"], spec.line_of("meter"), f"{path}.meter"))
    if price["model"] == PricingModel.PACKAGE and not price["package_size"]:
        ctx.fail("a package price needs package_size", line=spec.line, path=f"{path}.package_size")
    if price["model"] in (PricingModel.GRADUATED, PricingModel.VOLUME):
        rows = spec.get("tiers")
        if not isinstance(rows, list) or not rows:
            ctx.fail(
                "graduated and volume prices need a non-empty tiers table",
                line=spec.line,
                path=f"{path}.tiers",
            )
        previous = 0
        for index, row in enumerate(rows):
            row_path = f"{path}.tiers[{index}]"
            row = _mapping(
                ctx, row, line=rows.lines[index] if isinstance(rows, LineList) else line, path=row_path
            )
            _check_keys(ctx, row, {"up_to", "unit_amount", "unit_amount_decimal", "flat_amount"}, row_path)
            up_to = _int(ctx, row, "up_to", row_path, minimum=1, allow_null=True)
            if "up_to" not in row:
                ctx.fail("is required (null for the last row)", line=row.line, path=f"{row_path}.up_to")
            last = index == len(rows) - 1
            if (up_to is None) != last or (up_to is not None and up_to <= previous):
                ctx.fail(
                    "rows must have increasing up_to and end with up_to: null",
                    line=row.line,
                    path=f"{row_path}.up_to",
                )
            previous = up_to or previous
            entry = {
                "up_to": up_to,
                "unit_amount": _int(ctx, row, "unit_amount", row_path, default=0),
                "flat_amount": _int(ctx, row, "flat_amount", row_path, default=0),
            }
            if (fraction := _decimal(ctx, row, "unit_amount_decimal", row_path)) is not None:
                entry["unit_amount_decimal"] = fraction
            price["tiers"].append(entry)
    elif "tiers" in spec:
        ctx.fail(
            "only graduated and volume prices take a tiers table",
            line=spec.line_of("tiers"),
            path=f"{path}.tiers",
        )
    return price


def catalog_parse(*, text: str, filename: str = "<catalog>") -> dict:
    """Validate a catalog document; returns {"features": {...}, "tiers": [...]} or raises CatalogError."""
    ctx = _Ctx(filename)
    try:
        doc = load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problem = getattr(exc, "problem", None) or str(exc)
        ctx.fail(f"invalid YAML: {problem}", line=line, path="(document)")
    if doc is None:
        doc = LineDict()
        doc.line, doc.lines = 1, {}
    _mapping(ctx, doc, line=1, path="(document)")
    _check_keys(ctx, doc, {"currency", "features", "tiers", *_SECTIONS}, "(document)")
    currency = _str(ctx, doc, "currency", "(document)", default="usd", pattern=CURRENCY_RE)
    features = _parse_features(ctx, doc)

    raw_tiers = doc.get("tiers", LineList())
    if not isinstance(raw_tiers, list):
        ctx.fail("must be a list of tiers", line=doc.line_of("tiers"), path="tiers")
    tiers, seen_codes, price_codes, defaults = [], set(), set(), []
    for index, spec in enumerate(raw_tiers):
        path = f"tiers[{index}]"
        line = raw_tiers.lines[index]
        spec = _mapping(ctx, spec, line=line, path=path)
        _check_keys(
            ctx,
            spec,
            {
                "code",
                "name",
                "description",
                "public",
                "default",
                "sort",
                "prices",
                "features",
                "credits_per_period",
            },
            path,
        )
        code = _str(ctx, spec, "code", path, required=True, max_length=64, pattern=CODE_RE)
        if code in seen_codes:
            ctx.fail(f"duplicate tier code '{code}'", line=spec.line_of("code"), path=f"{path}.code")
        seen_codes.add(code)
        tier = {
            "code": code,
            "name": _str(ctx, spec, "name", path, default=code.capitalize()),
            "description": _str(ctx, spec, "description", path, max_length=5000),
            "is_public": _bool(ctx, spec, "public", path, default=True),
            "is_default": _bool(ctx, spec, "default", path, default=False),
            "sort_order": _int(ctx, spec, "sort", path, default=index, minimum=-1_000_000),
            "credit_allowance": _credits(ctx, spec, "credits_per_period", path),
            "prices": [],
            "features": {},
        }
        if tier["is_default"]:
            defaults.append((code, spec.line_of("default")))
        raw_prices = spec.get("prices", [])
        if not isinstance(raw_prices, list):
            ctx.fail("must be a list of prices", line=spec.line_of("prices"), path=f"{path}.prices")
        for p_index, p_spec in enumerate(raw_prices):
            p_path = f"{path}.prices[{p_index}]"
            price = _parse_price(ctx, p_spec, path=p_path, line=raw_prices.lines[p_index], currency=currency)
            if price["code"]:
                if price["code"] in price_codes:
                    ctx.fail(
                        f"duplicate price code '{price['code']}'",
                        line=p_spec.line_of("code"),
                        path=f"{p_path}.code",
                    )
                price_codes.add(price["code"])
            tier["prices"].append(price)
        raw_features = spec.get("features", LineDict())
        _mapping(ctx, raw_features, line=spec.line_of("features"), path=f"{path}.features")
        for f_code, value in raw_features.items():
            f_path = f"{path}.features.{f_code}"
            f_line = raw_features.line_of(f_code)
            if f_code not in features:
                ctx.fail("unknown feature: declare it under the top-level features", line=f_line, path=f_path)
            tier["features"][f_code] = _parse_feature_value(
                ctx, features[f_code]["kind"], value, line=f_line, path=f_path
            )
        tiers.append(tier)
    if len(defaults) > 1:
        ctx.fail(
            f"only one tier can be the default (also: {defaults[0][0]})",
            line=defaults[1][1],
            path="tiers.default",
        )
    parsed = {"features": features, "tiers": tiers}
    for section in _SECTIONS.values():
        parsed[section.key] = section.parse(ctx, doc, features)
    for section in _SECTIONS.values():
        if section.check:
            section.check(ctx, parsed)
    return parsed


@dataclass(frozen=True)
class CatalogSection:
    """A top-level key of the catalog owned by an app above this one (metering's `meters`): the app
    registers how to parse, apply and export it when Django starts, so the catalog never imports it."""

    key: str
    parse: Callable  # (ctx, doc, features) -> parsed value; ctx.fail() on errors
    apply: Callable  # (parsed, report, filename) -> None, inside the import's transaction
    export: Callable  # () -> a YAML-ready value; empty to leave the key out
    check: Callable | None = None  # (ctx, parsed catalog) -> None: cross-checks once all is parsed


_SECTIONS: dict[str, CatalogSection] = {}


def catalog_section_register(section: CatalogSection) -> None:
    _SECTIONS[section.key] = section


# --- applying ---------------------------------------------------------------------------------


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


def catalog_apply(*, catalog: dict) -> ImportReport:
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
        if report.changed:  # now, and again once committed (see memberships.services._notify_changed)
            catalog_changed.send(sender=Tier)
            transaction.on_commit(lambda: catalog_changed.send(sender=Tier))
    return report


def catalog_import(*, text: str, filename: str = "<catalog>") -> ImportReport:
    """Validate the whole file first, then apply it in one transaction."""
    catalog = catalog_parse(text=text, filename=filename)
    catalog["filename"] = filename
    try:
        return catalog_apply(catalog=catalog)
    except IntegrityError as exc:  # e.g. a price code still active on another tier
        raise CatalogError(
            f"{filename}: conflicts with the stored catalog: {exc}", details={"file": filename}
        ) from exc


# --- export -----------------------------------------------------------------------------------


def _feature_value(tf: TierFeature, kind: str):
    if not tf.enabled:
        return False
    if kind == FeatureKind.BOOLEAN:
        return True
    if kind == FeatureKind.RATE:
        window = WINDOW_NAMES.get(tf.rate_window_seconds)
        return f"{tf.rate_limit}/{window}" if window else False
    return "unlimited" if tf.limit_value is None else tf.limit_value


def catalog_export() -> str:
    """The active catalog in the import format (re-importing it changes nothing)."""
    features = {
        f.code: {
            k: v
            for k, v in {"name": f.name, "kind": f.kind, "unit": f.unit, "description": f.description}.items()
            if v
        }
        for f in Feature.objects.all()
    }
    kinds = {code: spec["kind"] for code, spec in features.items()}
    tiers = []
    for tier in (
        Tier.objects.filter(creator__isnull=True)  # creators' channel tiers are theirs, not the catalog's
        .prefetch_related("prices", "tier_features__feature")
        .order_by("sort_order", "id")
    ):
        item = {"code": tier.code, "name": tier.name}
        if tier.description:
            item["description"] = tier.description
        item.update({"public": tier.is_public, "default": tier.is_default, "sort": tier.sort_order})
        if tier.credit_allowance is not None:
            credits = tier.credit_allowance / 1_000_000
            item["credits_per_period"] = int(credits) if credits == int(credits) else credits
        prices = []
        for price in sorted((p for p in tier.prices.all() if p.active), key=lambda p: p.id):
            entry = {"code": price.code} if price.code else {}
            entry.update(
                {"unit_amount": price.unit_amount, "currency": price.currency, "interval": price.interval}
            )
            if price.model != PricingModel.FLAT:
                entry["model"] = price.model
            if price.tiers:
                entry["tiers"] = price.tiers
            if price.unit_amount_decimal is not None:
                entry["unit_amount_decimal"] = decimal_text(price.unit_amount_decimal)
            if price.package_size:
                entry["package_size"] = price.package_size
            if price.package_rounding != PackageRounding.UP:
                entry["package_rounding"] = price.package_rounding
            if price.meter:
                entry["meter"] = price.meter
            if price.trial_days:
                entry["trial_days"] = price.trial_days
            prices.append(entry)
        if prices:
            item["prices"] = prices
        item["features"] = {
            tf.feature.code: _feature_value(tf, kinds[tf.feature.code])
            for tf in sorted(tier.tier_features.all(), key=lambda tf: tf.feature.code)
        }
        tiers.append(item)
    document = {"features": features, "tiers": tiers}
    for section in _SECTIONS.values():
        if value := section.export():
            document[section.key] = value
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
