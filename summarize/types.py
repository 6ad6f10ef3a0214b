"""Typed values of the note side: utterances, the filtered transcript, the draft, flags.

Everything here lives in memory only; nothing patient-related is written or logged.
Segment ids are the ids of :class:`asr.types.Segment` (or the 0-based index of a line
in a text transcript): a note sentence points back to the utterances it rests on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from asr.types import Segment, Word


@dataclass(frozen=True, slots=True)
class Utterance:
    """One transcript segment as the note side sees it.

    ``speaker`` is ``"lege"``, ``"pasient"``, ``"pårørende"`` or ``None`` (unknown, as
    from live ASR without diarisation). ``words`` carry ASR probabilities when known.
    """

    id: int
    text: str
    start: float | None = None
    end: float | None = None
    speaker: str | None = None
    words: tuple[Word, ...] = ()

    @classmethod
    def from_segment(cls, seg: Segment, speaker: str | None = None) -> Utterance:
        return cls(seg.id, seg.text, seg.start, seg.end, speaker or seg.speaker, seg.words)


def utterances_from_segments(segments: Iterable[Segment]) -> list[Utterance]:
    return [Utterance.from_segment(s) for s in segments]


@dataclass(frozen=True, slots=True)
class Dropped:
    """A segment the small-talk filter left out of the note, and why (shown to the
    clinician, who can restore it)."""

    id: int
    reason: str


@dataclass(slots=True)
class FilteredTranscript:
    """All utterances, split into the ones kept for the note and the dropped ones."""

    utterances: list[Utterance]
    kept: list[int]
    dropped: list[Dropped]

    @property
    def kept_utterances(self) -> list[Utterance]:
        keep = set(self.kept)
        return [u for u in self.utterances if u.id in keep]

    def restore(self, segment_id: int) -> FilteredTranscript:
        """The clinician puts a dropped segment back."""
        if segment_id not in {d.id for d in self.dropped}:
            return self
        order = {u.id: i for i, u in enumerate(self.utterances)}
        kept = sorted([*self.kept, segment_id], key=lambda i: order.get(i, i))
        return FilteredTranscript(self.utterances, kept, [d for d in self.dropped if d.id != segment_id])


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of the draft and the segment ids it rests on (empty: no evidence)."""

    text: str
    evidence: tuple[int, ...] = ()


@dataclass(slots=True)
class NoteSection:
    id: str
    title: str
    sentences: list[Sentence] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


@dataclass(frozen=True, slots=True)
class Flag:
    """Something the clinician must look at before approving.

    ``kind``: ``unsupported_number``, ``unsupported_drug``, ``unsupported_laterality``,
    ``unsupported_date``, ``no_evidence``, ``uncertain_asr``, ``extractive``,
    ``llm_error``, ``empty``, ...
    """

    kind: str
    text: str
    section: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "text": self.text, "section": self.section}


@dataclass(slots=True)
class NoteDraft:
    """The drafted note: sections of sentences with evidence links, plus flags."""

    template_id: str
    template_version: str
    sections: list[NoteSection]
    flags: list[Flag] = field(default_factory=list)
    extractive: bool = False
    language: str = "nb"
    llm: str | None = None

    def section(self, section_id: str) -> NoteSection | None:
        return next((s for s in self.sections if s.id == section_id), None)

    @property
    def text(self) -> str:
        return "\n\n".join(f"{s.title}:\n{s.text}" for s in self.sections if s.sentences)

    def with_flags(self, flags: list[Flag]) -> NoteDraft:
        return replace(self, flags=list(flags))
