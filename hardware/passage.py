"""The fixed reference passage a clinician reads aloud in the microphone test.

About 70 words of neutral clinical prose (an invented case, no patient data), read in
roughly 30 seconds. It holds what matters for a scribe: drug names (Metformin, Ramipril,
Amoksicillin), doses and numbers (500 milligram, 38,5 grader) and a few clinical words.
Numbers are written as digits because that is how Whisper writes them, so a correct
reading is not counted as an error.
"""

from __future__ import annotations

PASSAGE_NB = (
    "Pasienten er en 62 år gammel mann med høyt blodtrykk og diabetes type 2. "
    "Han bruker Metformin 500 milligram to ganger daglig og Ramipril 5 milligram om morgenen. "
    "De siste tre dagene har han hatt hoste, tung pust og feber opptil 38,5 grader. "
    "Lungene har knatrelyder på høyre side. "
    "Vi starter behandling med Amoksicillin 750 milligram tre ganger daglig i sju dager, "
    "og han kommer til ny kontroll om en uke."
)
"""Bokmål (the default)."""

PASSAGE_NN = (
    "Pasienten er ein 62 år gammal mann med høgt blodtrykk og diabetes type 2. "
    "Han brukar Metformin 500 milligram to gonger dagleg og Ramipril 5 milligram om morgonen. "
    "Dei siste tre dagane har han hatt hoste, tung pust og feber opptil 38,5 grader. "
    "Lungene har knatrelydar på høgre side. "
    "Vi startar behandling med Amoksicillin 750 milligram tre gonger dagleg i sju dagar, "
    "og han kjem til ny kontroll om ei veke."
)
"""Nynorsk."""

PASSAGES = {"nb": PASSAGE_NB, "nn": PASSAGE_NN}


def passage(language: str | None = "nb") -> str:
    """The passage for an ASR or note language: nynorsk for "nn", else bokmål."""
    return PASSAGE_NN if (language or "").lower() in ("nn", "nynorsk") else PASSAGE_NB
