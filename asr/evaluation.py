"""Word and character error rates with the project's normalisation.

Lower-case, punctuation removed (Unicode categories P* and S*), whitespace collapsed;
letters such as æ, ø and å are kept as they are.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return _SPACE.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class ErrorRates:
    wer: float
    cer: float
    reference_words: int


def error_rates(reference: str, hypothesis: str) -> ErrorRates:
    import jiwer

    ref = normalize_text(reference)
    hyp = normalize_text(hypothesis)
    if not ref:
        raise ValueError("the reference text is empty")
    return ErrorRates(
        wer=float(jiwer.wer(ref, hyp)) if hyp else 1.0,
        cer=float(jiwer.cer(ref, hyp)) if hyp else 1.0,
        reference_words=len(ref.split()),
    )
