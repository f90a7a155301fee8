"""English for counted things: "1 minute", "5,700 minutes", "2 people" (the pages' `units` filter, the
charts' tooltips and the invoice lines all say it the same way)."""

from __future__ import annotations

from decimal import Decimal

_SIBILANT = ("ss", "us", "x", "z", "ch", "sh")


def _is_plural(word: str) -> bool:
    return word.endswith("s") and not word.endswith(("ss", "us", "is"))


def _abbreviation(word: str) -> bool:
    """GB, kWh, MiB, ms, h: symbols are never inflected ("5 GB", "1 ms"); "Request" is a word."""
    return len(word) <= 2 or any(char.isupper() for char in word[1:])


def plural(unit: str, count: Decimal | int | None) -> str:
    """The unit to follow `count`: singular for exactly one, else the plural. `unit` is the singular
    ("build minute"), a plural is accepted too ("minutes"), and "person|people" names an irregular
    plural. Abbreviations stay as they are."""
    singular, _, explicit = unit.partition("|")
    singular = singular.strip()
    words = singular.rsplit(" ", 1)
    last = words[-1]
    if not last or _abbreviation(last):
        return singular
    if count is not None and count == 1:
        if not explicit and _is_plural(last):
            return " ".join([*words[:-1], last[:-1]])
        return singular
    if explicit:
        return explicit.strip()
    if _is_plural(last):
        return singular
    if last.endswith("is"):
        last = last[:-2] + "es"  # analysis → analyses
    elif last.endswith(_SIBILANT):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*words[:-1], last])
