"""How right the speaker labels are, against labelled turns (the benchmark's and the tests'
measure).

Segments are mapped to the labelled turns by time: every stretch of time a segment covers
counts toward the turn it overlaps, so the numbers are shares of *speech time*:

* role accuracy: time whose role (lege / pasient / pårørende) is right; an unnamed segment
  (None) counts as wrong;
* clinician-vs-other accuracy: time where "is it the clinician?" is answered right;
* cluster purity: for each voice id, the time of its most common true speaker, summed, over
  all time (1.0: no voice mixes two people).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

ALIASES = {"parorende": "pårørende", "pårørande": "pårørende"}


def canonical(role: str | None) -> str | None:
    return ALIASES.get(role, role) if role else None


@dataclass(frozen=True, slots=True)
class SpeakerScores:
    role_accuracy: float
    clinician_accuracy: float
    purity: float
    seconds: float
    voices: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in
                {"role_accuracy": self.role_accuracy, "clinician_accuracy": self.clinician_accuracy,
                 "purity": self.purity, "seconds": self.seconds, "voices": self.voices}.items()}


def score(segments: Iterable[Any], turns: Sequence[dict[str, Any]]) -> SpeakerScores:
    """``segments``: objects with ``start``, ``end``, ``speaker``, ``speaker_id``; ``turns``:
    dicts with ``start``, ``end``, ``speaker`` (the ``.turns.json`` of a shared consultation)."""
    total = right_role = right_clin = 0.0
    by_voice: dict[Any, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for seg in segments:
        for turn in turns:
            overlap = min(seg.end, turn["end"]) - max(seg.start, turn["start"])
            if overlap <= 0:
                continue
            truth = canonical(turn["speaker"])
            guess = canonical(seg.speaker)
            total += overlap
            right_role += overlap if guess == truth else 0.0
            right_clin += overlap if (guess == "lege") == (truth == "lege") else 0.0
            by_voice[seg.speaker_id][truth or ""] += overlap
    if total <= 0:
        return SpeakerScores(0.0, 0.0, 0.0, 0.0, 0)
    purity = sum(max(v.values()) for v in by_voice.values()) / total
    voices = len([k for k in by_voice if k is not None])
    return SpeakerScores(right_role / total, right_clin / total, purity, total, voices)
