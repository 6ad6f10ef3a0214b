"""Norwegian person numbers: fødselsnummer and D-nummer, checked before anything is sent.

An 11-digit number is DDMMYY + three individual digits + two check digits (modulus 11,
weights 3 7 6 1 8 9 4 5 2 and 5 4 3 2 7 6 5 4 3 2). A D-nummer adds 4 to the first digit
(day + 40). Synthetic test numbers (Skatteetaten's Tenor test register) add 80 to the
month, older ones (NAV/Helsenorge test data) add 40; both are accepted so that IT can run
connection tests without a real patient. Which kind a number is decides its FHIR system.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from asr.errors import ConfigError

FNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.1"
DNR_SYSTEM = "urn:oid:2.16.578.1.12.4.1.4.2"

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


class PersonNumberError(ConfigError):
    """Not a valid fødselsnummer or D-nummer."""


@dataclass(frozen=True, slots=True)
class PersonNumber:
    value: str
    kind: str          # "fnr" or "dnr"
    synthetic: bool    # a test number (month + 40 or + 80)

    @property
    def system(self) -> str:
        return DNR_SYSTEM if self.kind == "dnr" else FNR_SYSTEM

    @property
    def masked(self) -> str:
        """For messages: the birth date part only (never the whole number)."""
        return self.value[:6] + "*****"


def _check_digit(digits: str, weights: tuple[int, ...]) -> int | None:
    r = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if r == 11 else None if r == 10 else r


def parse_person_number(text: str) -> PersonNumber:
    """The number as a :class:`PersonNumber`, or :class:`PersonNumberError` saying why not.

    Spaces are allowed (``138972 48098``); the message never repeats the whole number.
    """
    value = re.sub(r"\s", "", text or "")
    if not re.fullmatch(r"\d{11}", value):
        raise PersonNumberError("a fødselsnummer or D-nummer has 11 digits")
    day, month, year2 = int(value[0:2]), int(value[2:4]), int(value[4:6])
    kind = "fnr"
    if day > 40:
        kind, day = "dnr", day - 40
    synthetic = False
    if month > 80:
        synthetic, month = True, month - 80
    elif month > 40:
        synthetic, month = True, month - 40
    try:  # the century is not needed to check the date; 2000 is a leap year like most
        date(2000 if year2 % 4 == 0 else 2001, month, day)
    except ValueError:
        raise PersonNumberError(f"{value[:6]}*****: the first six digits are not a date (DDMMYY)") from None
    k1 = _check_digit(value[:9], _W1)
    k2 = _check_digit(value[:9] + str(k1), _W2) if k1 is not None else None
    if k1 is None or k2 is None or value[9:] != f"{k1}{k2}":
        raise PersonNumberError(f"{value[:6]}*****: the check digits do not match (mistyped number?)")
    return PersonNumber(value, kind, synthetic)


def with_check_digits(first_nine: str) -> str | None:
    """The 11-digit number for nine digits, or None when no check digit exists (tests, tools)."""
    k1 = _check_digit(first_nine, _W1)
    if k1 is None:
        return None
    k2 = _check_digit(first_nine + str(k1), _W2)
    return None if k2 is None else f"{first_nine}{k1}{k2}"
