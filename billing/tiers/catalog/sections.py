"""What the catalog's parts share: the import's report, and the registry of top-level sections
that apps above this one own (metering's `meters`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class ImportReport:
    created: dict = field(default_factory=lambda: {"features": 0, "tiers": 0, "prices": 0, "meters": 0})
    updated: dict = field(default_factory=lambda: {"features": 0, "tiers": 0, "tier_features": 0})
    deactivated_prices: int = 0
    tiers_not_in_file: list = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(sum(self.created.values()) + sum(self.updated.values()) + self.deactivated_prices)


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
