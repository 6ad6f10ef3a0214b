"""Numeric items in normalised text (:func:`extract_quantities`: numbers, doses, percents,
ratios, dates, clock times) and whether one said supports one written (:func:`quantity_supports`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from summarize.grounding.numbers import _MONTH_ABBR, MONTHS, normalize_numbers
from summarize.grounding.units import unit_info

__all__ = [
    "Quantity",
    "extract_quantities",
    "format_number",
    "quantity_supports",
]


def _to_decimal(s: str) -> Decimal | None:
    s = s.replace("\u00a0", "").replace("\u202f", "").replace("\u2009", "").replace(" ", "")
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", s):
        s = s.replace(".", "")
    s = s.replace(",", ".")
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def format_number(d: Decimal) -> str:
    """A Decimal in canonical Norwegian form: no trailing zeros, decimal comma."""
    d = d.normalize()
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s.replace(".", ",")


@dataclass(frozen=True, slots=True)
class Quantity:
    """One numeric item found in (normalised) text.

    ``value`` is canonical: ``"4,1"`` (decimal comma, no trailing zeros), ``"148/94"`` for a
    ratio, ``"3.3."``/``"3.3.2025"`` for a date, ``"14:30"`` for a clock time. ``unit`` is a
    canonical abbreviation (``mg``, ``µg``, ``g``, ``kg``, ``ml``, ``mmol/l``, ``IE``,
    ``%`` ...) or None. ``kind`` is ``number``, ``dose`` (a number with a unit),
    ``percent``, ``ratio``, ``date`` or ``time``. ``text`` is what a flag shows ("75 mg"),
    ``start``/``end`` the span in the text that was scanned.
    """

    value: str
    unit: str | None
    kind: str
    text: str
    start: int
    end: int

    @property
    def numbers(self) -> tuple[Decimal, ...]:
        """The numeric values (two for a ratio; day, month[, year] for a date)."""
        if self.kind == "date":
            return tuple(Decimal(p) for p in self.value.split(".") if p)
        if self.kind == "time":
            return tuple(Decimal(p) for p in self.value.split(":"))
        out = []
        for p in self.value.split("/"):
            d = _to_decimal(p)
            if d is not None:
                out.append(d)
        return tuple(out)

    @property
    def number(self) -> Decimal | None:
        nums = self.numbers
        return nums[0] if len(nums) == 1 and self.kind not in ("date", "time") else None


_NUM = (
    r"(?:\d{1,3}(?:[ \u00a0\u202f\u2009]\d{3})+(?![\d]|[.,]\d)"
    r"|\d{1,3}(?:\.\d{3})+(?![\d]|[.,]\d)"
    r"|\d+(?:[.,]\d+)?)"
)
_END = r"(?![\w]|[.,]\d)"
_UNIT_RE_SRC = (
    r"(?:mg|µg|μg|mcg|ug|ng|g|kg|ml|dl|l|mmol|µmol|μmol|mol|IE|mmHg|%)"
    r"(?:/(?:l|dl|ml|mol|kg|min|d|dag|døgn|t|time|uke))?(?![\w])"
)
_MONTH_SRC = "|".join(MONTHS) + "|" + "|".join(rf"{a}\." for a in _MONTH_ABBR)
_P_DATE_WORD = re.compile(rf"(\d{{1,2}})\.\s?({_MONTH_SRC})(?:\s+(\d{{4}}))?(?![\w])", re.I)
_P_DATE_NUM = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})" + _END)
_P_DATE_SHORT = re.compile(r"(\d{1,2})\.(\d{1,2})\.(?!\d)")
_DATE_PREFIX = re.compile(
    r"(?:den|dato|fra|til|innen|før|etter|fom|tom|f\.o\.m\.|t\.o\.m\.)\s+$", re.I
)
_P_TIME = re.compile(r"(\d{1,2})([.:])(\d{2})" + _END)
_TIME_PREFIX = re.compile(r"(?:kl\.?|klokka|klokken)\s*$", re.I)
_P_RATIO = re.compile(rf"({_NUM})\s*/\s*({_NUM})(?![\w/]|[.,]\d)(?:\s*(mmHg)(?![\w]))?")
_P_RATIO_AV = re.compile(rf"({_NUM})\s+av\s+(?:de\s+|dei\s+)?({_NUM}){_END}", re.I)
_P_RANGE = re.compile(rf"({_NUM})\s*[-–]\s*({_NUM}){_END}(?:\s*({_UNIT_RE_SRC}))?", re.I)
_P_SINGLE = re.compile(rf"({_NUM}){_END}(?:\s*({_UNIT_RE_SRC}))?", re.I)
_NUM_START = re.compile(r"(?<![\w])\d")


def _canon_unit(u: str | None) -> str | None:
    if not u:
        return None
    u = u.replace("μ", "µ")
    base, sep, per = u.partition("/")
    low = base.lower()
    canon = {"mcg": "µg", "ug": "µg", "ie": "IE", "mmhg": "mmHg"}.get(low, low)
    return canon + (sep + per.lower() if sep else "")


def _single(num: str, unit: str | None, start: int, end: int) -> Quantity | None:
    d = _to_decimal(num)
    if d is None:
        return None
    value = format_number(d)
    unit = _canon_unit(unit)
    if unit is None:
        return Quantity(value, None, "number", value, start, end)
    kind = "percent" if unit == "%" else "dose"
    return Quantity(value, unit, kind, f"{value} {unit}", start, end)


def _valid_date(d: int, m: int) -> bool:
    return 1 <= d <= 31 and 1 <= m <= 12


def extract_quantities(text: str, *, normalized: bool = False) -> list[Quantity]:
    """Numeric items in ``text``, in order.

    The text is first run through :func:`normalize_numbers` unless ``normalized`` is
    True; spans refer to the normalised text. "4.1" and "4,1" give the same value;
    "1.000" and "1 000" are one thousand; ranges ("4-5 timer", "25-50 mg") give one item
    per end; "X av Y" between two numbers is a ratio ("22 av 30" -> ``22/30``). Digits
    glued to letters ("SpO2", "B12", "HbA1c") are names, not numbers.
    """
    if not normalized:
        text = normalize_numbers(text)
    out: list[Quantity] = []
    pos = 0
    while True:
        m = _NUM_START.search(text, pos)
        if m is None:
            break
        s = m.start()
        q, end = _scan_at(text, s)
        out.extend(q)
        pos = max(end, s + 1)
    return out


def _scan_at(text: str, s: int) -> tuple[list[Quantity], int]:
    head = text[max(0, s - 12) : s]
    mm = _P_DATE_WORD.match(text, s)
    if mm:
        d = int(mm.group(1))
        mon = mm.group(2).lower().rstrip(".")
        month = MONTHS.get(mon) or _MONTH_ABBR.get(mon)
        if month and 1 <= d <= 31:
            year = mm.group(3)
            value = f"{d}.{month}." + (year or "")
            return [Quantity(value, None, "date", mm.group(0), s, mm.end())], mm.end()
    mm = _P_DATE_NUM.match(text, s)
    if mm and _valid_date(int(mm.group(1)), int(mm.group(2))):
        y = mm.group(3)
        year = y if len(y) == 4 else f"20{y}"
        value = f"{int(mm.group(1))}.{int(mm.group(2))}.{year}"
        return [Quantity(value, None, "date", mm.group(0), s, mm.end())], mm.end()
    mm = _P_DATE_SHORT.match(text, s)
    if mm and _DATE_PREFIX.search(head) and _valid_date(int(mm.group(1)), int(mm.group(2))):
        value = f"{int(mm.group(1))}.{int(mm.group(2))}."
        return [Quantity(value, None, "date", mm.group(0), s, mm.end())], mm.end()
    mm = _P_TIME.match(text, s)
    if mm and (mm.group(2) == ":" or _TIME_PREFIX.search(head)):
        h, mi = int(mm.group(1)), int(mm.group(3))
        if h <= 24 and mi < 60:
            value = f"{h}:{mi:02d}"
            return [Quantity(value, None, "time", mm.group(0), s, mm.end())], mm.end()
    for rx in (_P_RATIO, _P_RATIO_AV):
        mm = rx.match(text, s)
        if mm:
            a, b = _to_decimal(mm.group(1)), _to_decimal(mm.group(2))
            if a is not None and b is not None:
                value = f"{format_number(a)}/{format_number(b)}"
                unit = _canon_unit(mm.group(3)) if rx is _P_RATIO else None
                surface = mm.group(0) if rx is _P_RATIO_AV else value
                return [Quantity(value, unit, "ratio", surface, s, mm.end())], mm.end()
    mm = _P_RANGE.match(text, s)
    if mm:
        unit = mm.group(3)
        q1 = _single(mm.group(1), unit, s, mm.start(2))
        q2 = _single(mm.group(2), unit, mm.start(2), mm.end())
        return [q for q in (q1, q2) if q is not None], mm.end()
    mm = _P_SINGLE.match(text, s)
    if mm:
        q = _single(mm.group(1), mm.group(2), s, mm.end())
        return ([q] if q else []), mm.end()
    m2 = re.match(r"\d+", text[s:])
    return [], s + (m2.end() if m2 else 1)


def quantity_supports(evidence: Quantity, claim: Quantity) -> bool:
    """Does ``evidence`` (from the transcript) support ``claim`` (from the draft)?

    * bare number: any item carrying the same number (a number, a dose's number, one side
      of a ratio);
    * dose or percent: the same amount in the same unit family (``1 g`` = ``1000 mg``,
      ``75 mcg`` = ``75 µg``); ``5 mg`` does not support ``50 mg`` nor ``5 g``;
    * laboratory concentration (``82 µmol/l``, ``4,1 mmol/l``, ``62 mmol/mol``): the number
      said bare or with the same unit; a different unit does not support it;
    * ratio: the same two numbers; date: same day and month (and year if the claim has
      one); time: the same time.
    """
    if claim.kind == "ratio":
        return evidence.kind == "ratio" and evidence.numbers == claim.numbers
    if claim.kind == "date":
        if evidence.kind != "date":
            return False
        cn, en = claim.numbers, evidence.numbers
        if cn[:2] != en[:2]:
            return False
        return len(cn) < 3 or (len(en) >= 3 and cn[2] == en[2])
    if claim.kind == "time":
        return evidence.kind == "time" and evidence.value == claim.value
    cnum = claim.number
    if cnum is None:
        return False
    if claim.unit is None:
        if evidence.kind in ("date", "time"):
            return False
        return cnum in evidence.numbers
    info = unit_info(claim.unit)
    enum = evidence.number
    if enum is None:
        return False
    if info is None:  # unknown unit: the same text
        return evidence.unit == claim.unit and enum == cnum
    if info.lab:
        if evidence.unit is None:
            return enum == cnum
        einfo = unit_info(evidence.unit)
        return (
            einfo is not None
            and einfo.family == info.family
            and enum * einfo.factor == cnum * info.factor
        )
    einfo = unit_info(evidence.unit)
    if einfo is None or einfo.family != info.family:
        return False
    return enum * einfo.factor == cnum * info.factor
