"""Sentences of the transcript and the note: where one ends, which words carry no
content, and which note section a sentence belongs to by its cue words. Shared by the
drafter, the line-by-line drafting and the extractive fallback (one place, no import
loop between them)."""

from __future__ import annotations

import re

SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-ZÆØÅ0-9«\"(])|\n+")
# any sentence end followed by space (a turn's own sentences, whatever case comes next)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

STOP_WORDS = frozenset(
    "og i på er det som en et til av for med at har ikke jeg du han hun vi de den dette "
    "så men eller om fra kan skal vil må var blir ble nå da også litt noe noen mer meg deg "
    "seg sin sitt sine hans hennes deres oss dem her der når hva hvor hvordan eg ho me dei "
    "ikkje kva korleis ein eit ja nei jo vel altså liksom bare mye".split()
)


SECTION_CUES: dict[str, tuple[str, ...]] = {
    "legemidler": ("mg", "milligram", "tablett", "dose", "resept", "medisin", "legemid", "bruker"),
    "funn": (
        "undersøk", "blodtrykk", "puls", "høres", "hjertet", "lungene", "temperatur", "feber",
        "vekt", "veier", "prøve", "kreatinin", "kalium", "hba1c", "crp", "ødem", "hevelse",
        "bevegelig", "palper", "status", "skår", "score", "mmse", "test",
    ),
    "vurdering": ("vurder", "tyder på", "trolig", "sannsynlig", "diagnose", "bivirkning", "mistenk", "regulert", "tror"),
    "plan": ("kontroll", "time", "henvis", "uker", "måned", "avtal", "plan", "skal vi", "videre", "ringe", "sykmeld"),
}


def section_for(sentence: str, speaker: str | None, ids: list[str]) -> str:
    """The section of ``ids`` a sentence belongs to by its cue words; else the history
    (the clinician's words: the assessment)."""
    low = sentence.lower()
    for key, cues in SECTION_CUES.items():
        target = next((i for i in ids if i.startswith(key[:5])), None)
        if target and any(c in low for c in cues):
            return target
    anam = next((i for i in ids if i.startswith("anamn") or "sykehist" in i), ids[0])
    return anam if speaker != "lege" else next((i for i in ids if i.startswith("vurd")), anam)
