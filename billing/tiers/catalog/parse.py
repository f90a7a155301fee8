"""The catalog file parsed and validated (the format: billing.tiers.catalog's docstring): every
error names file, line and field, and nothing is applied until the whole file is valid."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import yaml

from billing.tiers.catalog.sections import _SECTIONS
from billing.tiers.exceptions import CatalogError
from billing.tiers.models import FeatureKind, Interval, PackageRounding, PricingModel
from billing.tiers.yamlload import LineDict, LineList, load
from kernel.decimals import decimal_text

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CURRENCY_RE = re.compile(r"^[a-z]{3}$")
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
WINDOW_NAMES = {seconds: name for name, seconds in WINDOWS.items()}


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
