"""Argument types and the one-line parser shared by every ``scribe`` command."""

from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse with the project's error promise: one line on stderr, exit 2 (argparse
    prints the whole usage first). Sub-commands get the same class."""

    def error(self, message: str) -> NoReturn:
        from asr.errors import printable

        print(f"scribe: error: {printable(' '.join(message.split()))} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def positive_float(text: str) -> float:
    """A finite number above 0 ("nan", "inf", "0" and "-1" are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number above 0")
    return value
