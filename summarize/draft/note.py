"""From utterances to a checked draft: filter → draft → verify, and its text/JSON forms.

Used by ``scribe note``, the benchmark and the app; everything stays in memory.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from summarize.draft.drafter import DraftOptions, NoteDrafter
from summarize.draft.incremental import IncrementalDrafter
from summarize.draft.retractions import resolve_utterances
from summarize.draft.sentences import SENTENCE_END
from summarize.grounding.injection import without_instructions
from summarize.llm.base import LlmEngine
from summarize.types import Dropped, FilteredTranscript, Flag, NoteDraft, Utterance

logger = logging.getLogger(__name__)

_CLAUSES = re.compile(r",\s+|\s+og\s+")


@dataclass(slots=True)
class NoteResult:
    draft: NoteDraft
    filtered: FilteredTranscript
    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def flags(self) -> list[Flag]:
        return self.draft.flags


def for_drafting(filtered: FilteredTranscript, smalltalk: Any, keep: Collection[int] = ()) -> list[Utterance]:
    """What the drafter and the verifier work from: the kept utterances without their
    social sentences (:func:`clean_mixed`) and without instructions to the software
    (:func:`summarize.grounding.injection.without_instructions`)."""
    return without_instructions(clean_mixed(filtered, smalltalk, keep))


def clean_mixed(filtered: FilteredTranscript, smalltalk: Any, keep: Collection[int] = ()) -> list[Utterance]:
    """Kept utterances with their purely social sentences removed.

    A segment that mixes clinical and social content is kept whole by the filter (the
    clinician sees it); before drafting, its social sentences ("Fikk et par ørret, ja.")
    are left out so they cannot leak into the note. A sentence is removed only if the
    social cue and no clinical cue of its own (judged alone, without context). Segments
    in ``keep`` (restored by the clinician) are kept whole.
    """
    out: list[Utterance] = []
    for u in filtered.kept_utterances:
        if u.id in keep:
            out.append(u)
            continue
        parts = [p for p in SENTENCE_END.split(u.text) if p.strip()]
        if len(parts) < 2 and not smalltalk.analyse(u.text).social:
            out.append(u)
            continue
        kept_parts = []
        for p in parts:
            cues = smalltalk.analyse(p)
            if cues.social and not _clinical_beyond_body(cues):
                # social on its own (a greeting, the cabin, the match); a body part alone
                # says nothing clinical ("… med nesa klistra til akvariet")
                continue
            if cues.social:  # both: drop the social clauses ("... med is på kneet og sett fotball")
                clauses = _CLAUSES.split(p)
                kept = [c if not (smalltalk.analyse(c).social and not smalltalk.analyse(c).clinical)
                        else _onset(c) for c in clauses]
                p = ", ".join(c.strip().rstrip(".,") for c in kept if c.strip()) + "."
            kept_parts.append(p)
        if not kept_parts:
            whole = smalltalk.analyse(u.text)
            if whole.clinical and not _clinical_beyond_body(whole):
                continue  # kept for a body part in small talk: nothing for the note
        text = " ".join(kept_parts) or u.text  # e.g. a social answer to a clinical question
        out.append(Utterance(u.id, text, u.start, u.end, u.speaker, u.words))
    return out


def _clinical_beyond_body(cues: Any) -> bool:
    """A clinical cue other than a body part (a symptom, finding, drug, number …)."""
    return any(h.category != "kropp" or h.hard for h in cues.clinical)


_ONSET = re.compile(r"\bfor\s+(?:\S+\s+){1,3}?(?:dag|dager|døgn|uke|uker|veke|veker|måned|måneder|månad|"
                    r"månader|år|time|timer)\s+siden\b", re.I)


def _onset(clause: str) -> str:
    """What a social clause says about onset ("i en kamp for tre uker siden" keeps
    "for tre uker siden"): when it started is history, where it happened is chat."""
    m = _ONSET.search(clause)
    return m.group(0) if m else ""


_UNSAFE = ("unsupported_number", "unsupported_drug", "unsupported_laterality", "unsupported_date",
           "retracted_value", "implausible_value")


def _remove_unsupported(draft: NoteDraft, flags: list[Flag]) -> None:
    """A model sentence with a number, dose, drug, side or date that was never said is
    taken out of the draft (a wrong dose must not reach the record by a missed review);
    its flag stays, with the sentence as detail, so the clinician sees what was removed."""
    bad = {(f.section, f.detail) for f in flags if f.kind in _UNSAFE}
    removed = 0
    for sec in draft.sections:
        keep = [x for x in sec.sentences if (sec.id, x.text) not in bad]
        removed += len(sec.sentences) - len(keep)
        sec.sentences = keep
    if removed:
        draft.flags.append(Flag("removed_unsupported", f"{removed} setning(er) med tall, legemidler, side eller "
                                "dato som ikke ble sagt (eller ble rettet) er tatt ut av utkastet (se flaggene over)"))


def _verify(draft: NoteDraft, clean: Sequence[Utterance], all_utterances: Sequence[Utterance], verifier: Any) -> None:
    from summarize.grounding.injection import drug_source_flags, instruction_flags
    from summarize.grounding.uncertain_asr import uncertain_asr_flags

    # instructions to the software first: the clinician reads them before anything else
    draft.flags[:0] = instruction_flags(all_utterances, draft.text) + drug_source_flags(draft, all_utterances)
    if any(s.sentences for s in draft.sections):
        flags = verifier.verify(draft, list(clean))
        draft.flags.extend(flags)
        if not draft.extractive:
            _remove_unsupported(draft, flags)
    draft.flags.extend(uncertain_asr_flags(list(all_utterances), lexicon=getattr(verifier, "lexicon", None)))


def make_note(
    utterances: Sequence[Utterance],
    template: Any,
    engine: LlmEngine | None,
    *,
    smalltalk: Any | None = None,
    verifier: Any | None = None,
    options: DraftOptions | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> NoteResult:
    """Filter small talk, draft (extractive without an engine or on failure), verify."""
    from summarize.draft.smalltalk import SmallTalkFilter
    from summarize.grounding.verify import Verifier

    smalltalk = smalltalk or SmallTalkFilter()
    verifier = verifier or Verifier()
    t0 = time.perf_counter()
    filtered = smalltalk.filter(list(utterances))
    clean = for_drafting(filtered, smalltalk)
    drafter = NoteDrafter(template, engine, options or DraftOptions(), on_progress=on_progress)
    # the drafter sees spoken self-corrections resolved ("50 … nei, 25 mg" → "25 mg"); the
    # verifier checks against the unresolved text, where it finds the retracted values
    draft = drafter.draft(resolve_utterances(clean), dropped=len(filtered.dropped))
    _verify(draft, clean, utterances, verifier)
    timing: dict[str, Any] = {
        "draft_s": round(time.perf_counter() - t0, 3),
        "llm_s": round(drafter.timing.draft_s, 3),
        "tokens": drafter.timing.tokens,
        "tokens_per_s": round(drafter.timing.tokens_per_second, 2),
        **structured_timing(drafter),
    }
    return NoteResult(draft, filtered, timing)


def structured_timing(drafter: NoteDrafter) -> dict[str, Any]:
    """The records calls' counts (valid first / after retry / fallbacks), time and
    records not grounded."""
    return {"structured": drafter.structured.as_dict(), "structured_s": round(drafter.timing.structured_s, 3),
            "records_dropped": drafter.timing.records_dropped}


class IncrementalNote:
    """The live path: ``update()`` with the transcript so far while recording (drafts in
    the background), ``finish()`` after Stop (only the rest is drafted)."""

    def __init__(
        self,
        template: Any,
        engine: LlmEngine | None,
        *,
        smalltalk: Any | None = None,
        verifier: Any | None = None,
        options: DraftOptions | None = None,
        chunk_tokens: int | None = 250,
    ) -> None:
        """``chunk_tokens``: transcript tokens per background chunk. Small, so that the
        part left after Stop (less than one chunk, plus the last utterances held back
        while they may still change) drafts in seconds on a CPU."""
        from summarize.draft.smalltalk import SmallTalkFilter
        from summarize.grounding.verify import Verifier

        self.template = template
        self.smalltalk = smalltalk or SmallTalkFilter()
        self.verifier = verifier or Verifier()
        self.drafter = NoteDrafter(template, engine, options or DraftOptions())
        self.incremental = IncrementalDrafter(self.drafter, chunk_tokens=chunk_tokens)

    def _filter(self, utterances: Sequence[Utterance], restored: Collection[int]) -> FilteredTranscript:
        filtered = self.smalltalk.filter(list(utterances))
        for sid in sorted(restored):  # segments the clinician put back
            filtered = filtered.restore(sid)
        return filtered

    def update(self, utterances: Sequence[Utterance], restored: Collection[int] = ()) -> None:
        filtered = self._filter(utterances, restored)
        self.incremental.update(resolve_utterances(for_drafting(filtered, self.smalltalk, restored)))

    def finish(self, utterances: Sequence[Utterance], restored: Collection[int] = ()) -> NoteResult:
        """The draft after Stop; may be called again after the clinician changed the
        transcript (only what changed is drafted)."""
        t0 = time.perf_counter()
        filtered = self._filter(utterances, restored)
        clean = for_drafting(filtered, self.smalltalk, restored)
        draft = self.incremental.finish(resolve_utterances(clean), dropped=len(filtered.dropped))
        _verify(draft, clean, utterances, self.verifier)
        return NoteResult(
            draft,
            filtered,
            {
                "stop_to_draft_s": round(time.perf_counter() - t0, 3),
                "llm_s": round(self.drafter.timing.draft_s, 3),
                "tokens": self.drafter.timing.tokens,
                "tokens_per_s": round(self.drafter.timing.tokens_per_second, 2),
                **structured_timing(self.drafter),
            },
        )

    def preview(self, utterances: Sequence[Utterance], restored: Collection[int] = ()) -> NoteDraft | None:
        """The draft so far while recording (only lines already drafted; no model call)."""
        filtered = self._filter(utterances, restored)
        return self.incremental.preview(resolve_utterances(for_drafting(filtered, self.smalltalk, restored)))

    def close(self) -> None:
        """The session ended (approved or discarded): nothing it drafted stays in memory."""
        self.incremental.close()


def note_json(
    result: NoteResult, models: dict[str, str | None], timing: dict[str, float | None]
) -> dict[str, Any]:
    d = result.draft
    return {
        "template": {"id": d.template_id, "version": d.template_version},
        "sections": [
            {
                "id": s.id,
                "title": s.title,
                "text": s.text,
                "sentences": [{"text": x.text, "evidence": list(x.evidence)} for x in s.sentences],
            }
            for s in d.sections
        ],
        "kept": list(result.filtered.kept),
        "dropped": [{"id": x.id, "reason": x.reason} for x in result.filtered.dropped],
        "flags": [f.to_dict() for f in d.flags],
        "extractive": d.extractive,
        "timing": timing,
        "models": models,
    }


def dropped_lines(filtered: FilteredTranscript) -> list[str]:
    text = {u.id: u.text for u in filtered.utterances}
    return [f"[{x.id}] {text.get(x.id, '')}  ({x.reason})" for x in filtered.dropped]


def note_text(result: NoteResult, template: Any) -> str:
    """The rendered note, then the dropped small talk, then the flags (plain text)."""
    out = [template.render(result.draft)]
    drops: list[Dropped] = result.filtered.dropped
    if drops:
        out.append("\nUtelatt som småprat (kan gjenopprettes):")
        out.extend("  " + line for line in dropped_lines(result.filtered))
    if result.draft.flags:
        out.append("\nÅ kontrollere før godkjenning:")
        for f in result.draft.flags:
            where = f" [{f.section}]" if f.section else ""
            out.append(f"  {f.kind}{where}: {f.text}")
    return "\n".join(out)
