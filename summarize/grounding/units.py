"""Units: spoken units after a number written as abbreviations ("5 milligram" -> "5 mg"),
and what each canonical unit measures (:func:`unit_info`: family, factor, lab or dose)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "UnitInfo",
    "normalize_units",
    "unit_info",
]

# Spoken units (and abbreviations) -> canonical abbreviation. Longest first in the regex.
_UNIT_WORDS: dict[str, str] = {
    "internasjonale enheter": "IE",
    "milligrammer": "mg",
    "milligram": "mg",
    "mikrogrammer": "µg",
    "mikrogram": "µg",
    "nanogram": "ng",
    "kilogram": "kg",
    "kilo": "kg",
    "grammer": "g",
    "gram": "g",
    "milliliter": "ml",
    "millilitre": "ml",
    "desiliter": "dl",
    "liter": "l",
    "millimol": "mmol",
    "mikromol": "µmol",
    "prosent": "%",
    "enheter": "IE",
    "enhet": "IE",
    "einingar": "IE",
    "eining": "IE",
    "mcg": "µg",
    "µg": "µg",
    "μg": "µg",
    "ug": "µg",
    "mg": "mg",
    "ng": "ng",
    "kg": "kg",
    "g": "g",
    "ml": "ml",
    "dl": "dl",
    "l": "l",
    "mmol": "mmol",
    "µmol": "µmol",
    "μmol": "µmol",
    "ie": "IE",
    "%": "%",
}

_UNIT_ALT = "|".join(re.escape(k) for k in sorted(_UNIT_WORDS, key=len, reverse=True) if k != "%")
_UNIT_AFTER_NUM_RE = re.compile(
    rf"(?<![\w])(\d+(?:[.,]\d+)?)[ \t\u00a0]*(%|(?:{_UNIT_ALT})(?![\w]))", re.I
)
_PER_RE = re.compile(
    r"(?<=\d )(mmol|µmol|mg|µg|ng|g|IE)\s+(?:per|pr\.?)\s+"
    r"(liter|l|mol|kilo|kg|desiliter|dl)(?![\w])",
    re.I,
)
_PER_UNIT = {
    "liter": "l",
    "l": "l",
    "mol": "mol",
    "kilo": "kg",
    "kg": "kg",
    "desiliter": "dl",
    "dl": "dl",
}


def _unit_sub(m: re.Match[str]) -> str:
    num, unit = m.group(1), m.group(2)
    canon = _UNIT_WORDS.get(unit.lower(), unit)
    return f"{num} {canon}"


def normalize_units(text: str) -> str:
    """Spoken units after a number as abbreviations: "5 milligram" -> "5 mg",
    "96 prosent" -> "96 %", "4,1 millimol per liter" -> "4,1 mmol/l". Units not after a
    number are left alone."""
    text = text.replace("μ", "µ")
    text = _UNIT_AFTER_NUM_RE.sub(_unit_sub, text)
    text = _PER_RE.sub(lambda m: f"{m.group(1)}/{_PER_UNIT[m.group(2).lower()]}", text)
    return text


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """What a unit measures: ``family`` (mass, volume, amount, IE, %, ...), the factor to
    the family's base unit, and whether it is a laboratory concentration (``mmol/l``,
    ``µmol/l``, ``mmol/mol`` ...) rather than a dose."""

    family: str
    factor: Decimal
    lab: bool


_BASE_UNITS: dict[str, tuple[str, Decimal]] = {
    "ng": ("mass", Decimal("0.001")),
    "µg": ("mass", Decimal(1)),
    "mg": ("mass", Decimal(1000)),
    "g": ("mass", Decimal(1_000_000)),
    "kg": ("mass", Decimal(1_000_000_000)),
    "ml": ("volume", Decimal(1)),
    "dl": ("volume", Decimal(100)),
    "l": ("volume", Decimal(1000)),
    "µmol": ("amount", Decimal(1)),
    "mmol": ("amount", Decimal(1000)),
    "mol": ("amount", Decimal(1_000_000)),
    "IE": ("ie", Decimal(1)),
    "%": ("percent", Decimal(1)),
    "mmHg": ("pressure", Decimal(1)),
}
_PER_TIME = frozenset({"d", "dag", "døgn", "t", "time", "uke"})


def unit_info(unit: str | None) -> UnitInfo | None:
    """Family, factor and lab-ness of a canonical unit (None for unknown units)."""
    if not unit:
        return None
    base, _, per = unit.partition("/")
    if base not in _BASE_UNITS:
        return None
    family, factor = _BASE_UNITS[base]
    if not per or per in _PER_TIME:
        return UnitInfo(family, factor, False)
    if per == "kg":
        return UnitInfo(f"{family}/kg", factor, False)
    return UnitInfo(f"{family}/{per}", factor, True)
