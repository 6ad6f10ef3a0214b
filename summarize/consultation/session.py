"""One consultation, in memory: the transcript, the clinician's changes, the draft, the
flags and their resolution, then approval or discard.

A :class:`Session` owns everything patient-related for one consultation. It is a small
state machine (``IDLE → RECORDING ⇄ PAUSED → DRAFTING → REVIEW → DONE``); ending it
(:meth:`Session.approve` after delivery, or :meth:`Session.discard`) clears its buffers
in place, so that nothing the clinician said stays reachable from the object. Nothing here
writes to disk or logs text. :meth:`Session.approve` is the only way to make an
:class:`ApprovedNote`, and it refuses while a flag is unresolved.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from difflib import SequenceMatcher
from typing import Any

from asr.types import Segment
from summarize.types import FilteredTranscript, Flag, NoteDraft, NoteSection, Sentence, Utterance

logger = logging.getLogger(__name__)


class SessionError(Exception):
    """An action that the session's state does not allow (a one-line message for the user)."""


class State(enum.Enum):
    IDLE = "idle"
    RECORDING = "recording"
    PAUSED = "paused"
    DRAFTING = "drafting"
    REVIEW = "review"
    DONE = "done"


_ALLOWED: dict[State, set[State]] = {
    State.IDLE: {State.RECORDING, State.DRAFTING, State.DONE},
    State.RECORDING: {State.PAUSED, State.DRAFTING, State.DONE},
    State.PAUSED: {State.RECORDING, State.DRAFTING, State.DONE},
    State.DRAFTING: {State.REVIEW, State.DONE},
    State.REVIEW: {State.DRAFTING, State.DONE},
    State.DONE: set(),
}

RESOLUTIONS = ("edited", "accepted")


@dataclass(slots=True)
class FlagItem:
    """A verifier flag and what the clinician did about it (``None`` until resolved)."""

    flag: Flag
    resolution: str | None = None


_TOKEN = object()


@dataclass(frozen=True, slots=True)
class ApprovedNote:
    """The note as the clinician approved it; the only thing an EPJ sink accepts.

    ``text`` is the note in the template's layout. ``sections`` are (title, text) pairs.
    The statistics carry no patient data (for the audit log of #5).
    """

    session_id: str
    template_id: str
    template_version: str
    title: str
    language: str
    text: str
    sections: tuple[tuple[str, str], ...]
    approved_at: datetime
    extractive: bool
    edit_ratio: float
    stop_to_approve_s: float | None
    flags_by_kind: tuple[tuple[str, int], ...]
    llm: str | None = None
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _TOKEN:
            raise SessionError("an ApprovedNote is made only by Session.approve()")


def edit_ratio(before: str, after: str) -> float:
    """Normalised edit distance between the draft and the approved text (0 = unchanged)."""
    if not before and not after:
        return 0.0
    return round(1.0 - SequenceMatcher(None, before, after, autojunk=False).ratio(), 4)


class Session:
    """Everything of one consultation, in memory only."""

    def __init__(self, template: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.id = uuid.uuid4().hex
        self.template = template
        self.state = State.IDLE
        self._clock = clock
        self.segments: list[Segment] = []
        self.tentative = ""
        self.edits: dict[int, str] = {}
        self.deleted: set[int] = set()
        self.restored: set[int] = set()
        self.filtered: FilteredTranscript | None = None
        self.draft: NoteDraft | None = None
        self.section_texts: dict[str, str] = {}
        self.flags: list[FlagItem] = []
        self.stopped_at: float | None = None
        self.started_wall: datetime | None = None   # for the audit log
        self.stopped_wall: datetime | None = None
        self.audio_s = 0.0
        self.speaker_counts: dict[str, int] = {}  # voices, relabels, profile: counts for the audit line
        self._wipers: list[Callable[[], None]] = []

    # -- state ------------------------------------------------------------------------
    def _go(self, new: State) -> None:
        if new not in _ALLOWED[self.state]:
            raise SessionError(f"cannot go from {self.state.value} to {new.value}")
        self.state = new

    def start(self) -> None:
        self._go(State.RECORDING)
        self.started_wall = datetime.now(UTC)

    def pause(self) -> None:
        self._go(State.PAUSED)

    def resume(self) -> None:
        self._go(State.RECORDING)

    def stop(self) -> None:
        """Recording ended: drafting the rest begins."""
        self._go(State.DRAFTING)
        self.stopped_at = self._clock()
        self.stopped_wall = datetime.now(UTC)

    def on_wipe(self, wiper: Callable[[], None]) -> None:
        """Register a buffer outside the session (audio source, transcriber) to clear."""
        self._wipers.append(wiper)

    # -- transcript -------------------------------------------------------------------
    def add_segment(self, segment: Segment) -> None:
        self._alive()
        i = len(self.segments)
        while i > 0 and self.segments[i - 1].start > segment.start:
            i -= 1
        self.segments.insert(i, segment)
        self.tentative = ""

    def set_speakers(self, labels: dict[int, tuple[str | None, int | None]]) -> list[int]:
        """New (role, voice id) of segments, by id; the ids that changed."""
        self._alive()
        changed = []
        for i, seg in enumerate(self.segments):
            label = labels.get(seg.id)
            if label is not None and (seg.speaker, seg.speaker_id) != label:
                self.segments[i] = dataclasses.replace(seg, speaker=label[0], speaker_id=label[1])
                changed.append(seg.id)
        return changed

    def set_tentative(self, text: str) -> None:
        self._alive()
        self.tentative = text

    def utterances(self) -> list[Utterance]:
        """The transcript as the clinician left it: edits applied, deleted segments gone."""
        out = []
        for s in self.segments:
            if s.id in self.deleted:
                continue
            u = Utterance.from_segment(s)
            if s.id in self.edits:
                u = Utterance(u.id, self.edits[s.id], u.start, u.end, u.speaker, ())
            out.append(u)
        return out

    def edit_segment(self, segment_id: int, text: str) -> None:
        self._alive()
        self._segment(segment_id)
        if text.strip():
            self.edits[segment_id] = " ".join(text.split())
        else:
            self.delete_segment(segment_id)

    def delete_segment(self, segment_id: int) -> None:
        """Take a segment out of the transcript (e.g. talk about another patient)."""
        self._alive()
        self._segment(segment_id)
        self.deleted.add(segment_id)

    def restore(self, segment_id: int) -> None:
        """Put a segment the small-talk filter dropped back into the note's input."""
        self._alive()
        self._segment(segment_id)
        self.restored.add(segment_id)
        if self.filtered is not None:
            self.filtered = self.filtered.restore(segment_id)

    def filter(self, smalltalk: Any) -> FilteredTranscript:
        """Run the small-talk filter on the current transcript, keeping restored segments."""
        filtered = smalltalk.filter(self.utterances())
        for sid in sorted(self.restored):
            filtered = filtered.restore(sid)
        self.filtered = filtered
        return filtered

    def _segment(self, segment_id: int) -> Segment:
        for s in self.segments:
            if s.id == segment_id:
                return s
        raise SessionError(f"no transcript segment {segment_id}")

    # -- draft and review -------------------------------------------------------------
    def set_draft(self, draft: NoteDraft, filtered: FilteredTranscript | None = None) -> None:
        if self.state is State.REVIEW:
            self._go(State.DRAFTING)
        self._go(State.REVIEW)
        self.draft = draft
        if filtered is not None:
            self.filtered = filtered
        self.section_texts = {s.id: s.text for s in draft.sections}
        self.flags = [FlagItem(f) for f in draft.flags]
        listed = {(f.section, f.text) for f in draft.flags if f.kind == "no_evidence"}
        for sec in draft.sections:  # a sentence without a source is for the clinician to check
            for sentence in sec.sentences:
                if not sentence.evidence and (sec.id, sentence.text) not in listed:
                    self.flags.append(FlagItem(Flag("no_evidence", sentence.text, sec.id)))

    def redraft(self) -> None:
        """The clinician changed the transcript after the draft: draft again."""
        self._go(State.DRAFTING)

    def edit_section(self, section_id: str, text: str) -> None:
        """The clinician's text for a section. Flags about a sentence that is no longer
        in the section count as resolved by the edit."""
        self._review()
        if section_id not in self.section_texts:
            raise SessionError(f"no section {section_id!r} in this note")
        self.section_texts[section_id] = text.strip()
        for item in self.flags:
            if item.resolution is None and item.flag.section == section_id and item.flag.text \
                    and item.flag.text not in text:
                item.resolution = "edited"

    def resolve_flag(self, index: int, how: str = "accepted") -> None:
        self._review()
        if how not in RESOLUTIONS:
            raise SessionError(f"a flag is resolved as {' or '.join(RESOLUTIONS)}, not {how!r}")
        self.flags[index].resolution = how

    @property
    def unresolved(self) -> list[FlagItem]:
        return [f for f in self.flags if f.resolution is None]

    @property
    def can_approve(self) -> bool:
        return self.state is State.REVIEW and self.draft is not None and not self.unresolved

    def approved_text(self) -> str:
        """The note in the template's layout, with the clinician's section texts."""
        assert self.draft is not None
        edited = NoteDraft(
            self.draft.template_id, self.draft.template_version,
            [NoteSection(s.id, s.title, [Sentence(self.section_texts.get(s.id, ""))]
                         if self.section_texts.get(s.id) else []) for s in self.draft.sections],
            [], self.draft.extractive, self.draft.language, self.draft.llm)
        return str(self.template.render(edited, {"approved": True}))

    def approve(self) -> ApprovedNote:
        """The clinician approves: the only way to an :class:`ApprovedNote`. The session
        stays in memory until the sink confirmed delivery (then :meth:`close`)."""
        self._review()
        if self.unresolved:
            raise SessionError(f"{len(self.unresolved)} flag(s) must be edited or accepted before approval")
        assert self.draft is not None
        kinds = flag_counts(self.flags)
        before = "\n".join(s.text for s in self.draft.sections)
        after = "\n".join(self.section_texts.get(s.id, "") for s in self.draft.sections)
        return ApprovedNote(
            session_id=self.id,
            template_id=self.draft.template_id,
            template_version=self.draft.template_version,
            title=str(getattr(self.template, "title", self.draft.template_id)),
            language=self.draft.language,
            text=self.approved_text(),
            sections=tuple((s.title, self.section_texts.get(s.id, "")) for s in self.draft.sections
                           if self.section_texts.get(s.id)),
            approved_at=datetime.now(UTC),
            extractive=self.draft.extractive,
            edit_ratio=edit_ratio(before, after),
            stop_to_approve_s=round(self._clock() - self.stopped_at, 3) if self.stopped_at else None,
            flags_by_kind=tuple(sorted(kinds.items())),
            llm=self.draft.llm,
            _token=_TOKEN,
        )

    # -- end --------------------------------------------------------------------------
    def close(self) -> None:
        """Delivered (or discarded): clear every buffer in place, then the outside ones."""
        self.state = State.DONE
        self.segments.clear()
        self.tentative = ""
        self.edits.clear()
        self.deleted.clear()
        self.restored.clear()
        if self.filtered is not None:
            self.filtered.utterances.clear()
            self.filtered.kept.clear()
            self.filtered.dropped.clear()
        self.filtered = None
        if self.draft is not None:
            for s in self.draft.sections:
                s.sentences.clear()
            self.draft.sections.clear()
            self.draft.flags.clear()
        self.draft = None
        self.section_texts.clear()
        self.flags.clear()
        self.speaker_counts.clear()
        for wipe in self._wipers:
            try:
                wipe()
            except Exception as exc:  # a failing wiper must not keep the others from running
                logger.warning("clearing a session buffer failed: %s", type(exc).__name__)
        self._wipers.clear()

    discard = close

    @property
    def is_empty(self) -> bool:
        return not (self.segments or self.tentative or self.edits or self.draft or self.section_texts
                    or self.flags or self.filtered)

    def _alive(self) -> None:
        if self.state is State.DONE:
            raise SessionError("this session has ended")

    def _review(self) -> None:
        if self.state is not State.REVIEW or self.draft is None:
            raise SessionError("there is no draft to review yet")


def flag_counts(flags: Sequence[FlagItem]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in flags:
        out[f.flag.kind] = out.get(f.flag.kind, 0) + 1
    return out
