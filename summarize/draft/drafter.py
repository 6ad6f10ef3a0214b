"""Draft a note in the template's sections from the filtered transcript.

Flow (all in memory)::

    FilteredTranscript ──kept utterances──▶ prompt (numbers as digits, transcript quoted as data)
        ──LlmEngine──▶ "## Section" text ──parse──▶ sections of sentences
        ──evidence linking──▶ Sentence(text, evidence=segment ids) ──Verifier──▶ flags

* **Strategies.** ``lines`` (default): one short call per clinical utterance
  (:mod:`summarize.draft.lines`, with typed records from :mod:`summarize.draft.records`);
  ``note``: the whole note in one call (:mod:`summarize.draft.note_prompt`).
* **Prompt.** Strict Norwegian instructions ("use only what was said"), the template's
  sections with their instructions, and the transcript between markers as quoted data.
  Number words are turned into digits first ("hundre og førti over nitti" → 140/90), so
  the model copies numbers instead of converting them (small models get that wrong).
* **Long consultations** are drafted in chunks that fit the model's context; the
  partial notes are merged section by section without another model pass (a merge by
  the model would cost time and could invent text), dropping repeated sentences.
* **Incremental drafting** (:class:`summarize.draft.incremental.IncrementalDrafter`):
  while recording goes on, each chunk of committed, kept text is drafted in a background
  thread, so after Stop only the last chunk is left.
* **Evidence.** Each sentence is linked to the utterances it shares numbers, drug names
  and content words with (:mod:`summarize.draft.evidence`); a sentence without any is
  flagged by the verifier.
* **Fallback.** No engine, or an engine failure: an extractive draft (the clinical
  sentences themselves, grouped by section) clearly marked as such
  (:mod:`summarize.draft.extractive`). The transcript is never lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asr.errors import ScribeError
from summarize.draft import lines, records
from summarize.draft.evidence import _dedupe, link_evidence
from summarize.draft.extractive import add_omitted, empty_draft, extractive_draft
from summarize.draft.note_prompt import _HEADED, build_messages, chunk_utterances, parse_sections
from summarize.draft.records import Records
from summarize.errors import LlmError
from summarize.llm.base import ChatMessage, LlmEngine, generate_many
from summarize.llm.structured import StructuredStats, structured_call
from summarize.types import Flag, NoteDraft, NoteSection, Sentence, Utterance

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DraftOptions:
    """Drafting settings.

    Attributes:
        max_tokens: output budget of one model call (one chunk's partial note).
        chunk_tokens: transcript tokens per chunk when the whole does not fit (and the
            unit of incremental drafting).
        evidence_min_score: overlap needed to link a sentence to an utterance.
        add_omitted: add transcript sentences with numbers or drug names the model left
            out (flagged ``added_from_transcript`` for the clinician to keep or delete).
        strategy: ``"lines"`` (default): each clinical utterance is turned into tagged
            journal sentences by its own short model call (:mod:`summarize.draft.lines`; what
            small local models do well, and it drafts as the consultation goes on);
            ``"note"``: the model writes the whole note (or a chunk's part of it) under
            the template's headings in one call (for larger models that summarise well).
        keep_uncovered: (``lines``) sentences of an utterance the model left out are kept
            as said (the patient's in «quotes»), so a skipped fact is never lost; not
            for utterances whose mean ASR word probability is below
            ``backstop_min_probability`` (the embedded Whisper on the shared synthesized
            audio: 0.04–0.64; garbled words would go into the note).
        batch_size: utterances sent to the model together (``lines``); 0 = what the
            engine prefers (``preferred_batch``: concurrent requests to an LLM server,
            a batch on a GPU, one by one on a CPU, where batching measured no faster).
        records: (``lines``) an utterance with a drug, a dose, a measurement or an
            allergy also gets a structured call (:mod:`summarize.draft.records`, JSON-schema
            constrained); its grounded medication, vital-sign and allergy records are
            rendered in journal form and replace the model's sentences about them.
    """

    max_tokens: int = 600
    chunk_tokens: int = 1200
    evidence_min_score: float = 2.0
    temperature: float = 0.0
    add_omitted: bool = True
    strategy: str = "lines"
    batch_size: int = 0
    keep_uncovered: bool = True
    backstop_min_probability: float = 0.7
    records: bool = True


@dataclass(slots=True)
class DraftTiming:
    draft_s: float = 0.0
    tokens: int = 0
    llm_calls: int = 0
    unusable: int = 0  # calls whose answer gave no usable line (``lines`` strategy)
    structured_s: float = 0.0  # structured (records) calls: time, and records not grounded
    records_dropped: int = 0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.draft_s if self.draft_s > 0 else 0.0


@dataclass(slots=True)
class NoteDrafter:
    """Turns kept utterances into a :class:`NoteDraft` with ``engine`` (or extractively)."""

    template: object
    engine: LlmEngine | None = None
    options: DraftOptions = field(default_factory=DraftOptions)
    timing: DraftTiming = field(default_factory=DraftTiming)
    on_progress: Callable[[str], None] | None = None
    structured: StructuredStats = field(default_factory=StructuredStats)

    def _count(self, text: str) -> int:
        if self.engine is None:
            return max(1, len(text) // 3)
        return self.engine.count_tokens(text)

    def budget(self) -> int:
        """Transcript tokens one call can take (context minus instructions and output)."""
        if self.engine is None:
            return self.options.chunk_tokens
        fixed = sum(self._count(m.content) for m in build_messages(self.template, []))
        room = self.engine.context_length - fixed - self.options.max_tokens - 64
        return max(200, min(room, self.options.chunk_tokens))

    def _generate(self, messages: list[ChatMessage], max_tokens: int) -> str:
        assert self.engine is not None
        t0 = time.perf_counter()
        try:
            gen = self.engine.generate(messages, max_tokens=max_tokens, temperature=self.options.temperature)
        except ScribeError:
            raise
        except Exception as exc:  # an engine bug must not lose the transcript
            raise LlmError(f"the language model failed: {type(exc).__name__}") from exc
        self.timing.draft_s += time.perf_counter() - t0
        self.timing.tokens += gen.tokens
        self.timing.llm_calls += 1
        return gen.text

    def draft_partial(self, utterances: Sequence[Utterance], before: Utterance | None = None) -> dict[str, list[str]]:
        """Model calls over ``utterances`` (must fit the budget): sentences per section.
        ``before`` is the utterance just before them (the question an answer replies to).

        Raises :class:`LlmError` if the engine fails or returns nothing usable.
        """
        if self.options.strategy == "lines":
            return self._partial_lines(utterances, before)
        parts = parse_sections(self.template, self._generate(build_messages(self.template, utterances),
                                                             self.options.max_tokens))
        if not parts.pop(_HEADED, False) or not any(parts.values()):
            raise LlmError("the language model returned no usable note text (no section headings)")
        return parts

    def _partial_lines(self, utterances: Sequence[Utterance], before: Utterance | None) -> dict[str, list[str]]:
        return self.collect(self.draft_units(lines.units(utterances, before)))

    def collect(self, parsed: Sequence[Sequence[tuple[str, str]]]) -> dict[str, list[str]]:
        """(section id, sentence) lines of several units as sentences per section."""
        out: dict[str, list[str]] = {s.id: [] for s in self.template.sections}  # type: ignore[attr-defined]
        for unit_lines in parsed:
            for sid, sentence in unit_lines:
                out[sid].append(sentence)
        return out

    @property
    def batch_size(self) -> int:
        """Units per model call: the option, else what the engine prefers (1 = one by one)."""
        return max(1, self.options.batch_size or int(getattr(self.engine, "preferred_batch", 1)))

    def draft_units(self, todo: Sequence[Any]) -> list[list[tuple[str, str]]]:
        """Guarded (section id, sentence) lines for each :class:`summarize.draft.lines.Unit`
        (``lines`` strategy), ``batch_size`` units per model call."""
        out: list[list[tuple[str, str]]] = []
        size = self.batch_size
        for start in range(0, len(todo), size):
            batch = todo[start:start + size]
            if self.on_progress:
                self.on_progress(f"utkast {start + len(batch)}/{len(todo)}")
            budgets = [lines.max_tokens_for(self._count(u.utterance.text), self.options.max_tokens) for u in batch]
            texts = self._generate_many([lines.build_messages(self.template, u) for u in batch], budgets)
            for unit, text in zip(batch, texts, strict=True):
                parsed = lines.parse_lines(self.template, text, unit)
                self.timing.unusable += not parsed and not lines.says_nothing(text)
                parsed, cover, keep = self._with_records(unit, parsed)
                if self.options.keep_uncovered:
                    parsed = lines.backstop(self.template, unit, parsed, self.options.backstop_min_probability,
                                            cover=cover, keep=keep)
                out.append(parsed)
        return out

    def records_for(self, unit: Any, *, constrain: bool = True) -> Records | None:
        """The grounded records of one unit: medications and allergies by a structured call
        (when it names a drug, a dose or an allergy), measurements read from the words
        (None: no engine, or nothing found and no valid answer)."""
        if self.engine is None:
            return None
        vitals = records.find_vitals(unit.utterance.text)
        source = records.unit_text(unit.utterance, unit.question)
        if not records.has_record_cue(source):
            return records.Records(vitals=vitals) if vitals else None
        t0 = time.perf_counter()
        try:
            found = structured_call(
                self.engine, records.build_messages(source, unit.utterance.speaker,
                                                    getattr(self.template, "language", "nb")),
                records.Prescribed, max_tokens=160, stats=self.structured, constrain=constrain)
        except ScribeError:
            raise
        except Exception as exc:  # an engine bug must not lose the transcript
            raise LlmError(f"the language model failed: {type(exc).__name__}") from exc
        finally:
            self.timing.structured_s += time.perf_counter() - t0
        if found is None:
            return records.Records(vitals=vitals) if vitals else None
        kept, dropped = records.grounded(
            records.Records(medications=found.medications, allergies=found.allergies), source, unit.utterance.speaker)
        self.timing.records_dropped += dropped
        return kept.model_copy(update={"vitals": vitals})

    def _with_records(self, unit: Any, parsed: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str, int]:
        """The model's lines with its sentences about medicines, measurements and allergies
        replaced by the rendered records (when the unit has any); also the words the
        records stand for and how many lines at the end are records (for the backstop)."""
        if not self.options.records:
            return parsed, "", 0
        found = self.records_for(unit)
        if found is None or found.empty():
            return parsed, "", 0
        ids = [s.id for s in self.template.sections]  # type: ignore[attr-defined]
        routes = {kind: s.id for s in self.template.sections for kind in getattr(s, "records", ())}  # type: ignore[attr-defined]
        rendered = records.rendered_lines(found, unit.utterance.speaker, ids, getattr(self.template, "language", "nb"),
                                          routes)
        kept = [(sid, x) for sid, x in parsed if not records.covered_by(x, found)]
        return kept + rendered, records.spoken_words(found), len(rendered)

    def _generate_many(self, prompts: list[list[ChatMessage]], budgets: list[int]) -> list[str]:
        if len(prompts) == 1:
            return [self._generate(prompts[0], budgets[0])]
        assert self.engine is not None
        t0 = time.perf_counter()
        try:
            gens = generate_many(self.engine, prompts, max_tokens=budgets, temperature=self.options.temperature)
        except ScribeError:
            raise
        except Exception as exc:  # an engine bug must not lose the transcript
            raise LlmError(f"the language model failed: {type(exc).__name__}") from exc
        self.timing.draft_s += time.perf_counter() - t0
        self.timing.tokens += sum(g.tokens for g in gens)
        self.timing.llm_calls += len(gens)
        return [g.text for g in gens]

    def merge(self, partials: Sequence[dict[str, list[str]]], utterances: Sequence[Utterance]) -> NoteDraft:
        """Concatenate partial notes per section, drop repeats, link evidence, and add
        what the model left out of the numbers and drug names (see :func:`add_omitted`).

        Raises :class:`LlmError` when every model answer was unusable (garbage)."""
        if self.timing.llm_calls and self.timing.unusable == self.timing.llm_calls:
            raise LlmError("the language model returned no usable note text")
        sections = []
        seen: list[set[str]] = []
        for s in self.template.sections:  # type: ignore[attr-defined]
            sentences = _dedupe([x for p in partials for x in p.get(s.id, [])], seen)
            linked = [Sentence(x, link_evidence(x, utterances, self.options.evidence_min_score)) for x in sentences]
            sections.append(NoteSection(s.id, s.title, linked))
        draft = NoteDraft(
            template_id=self.template.id,  # type: ignore[attr-defined]
            template_version=str(self.template.version),  # type: ignore[attr-defined]
            sections=sections,
            language=getattr(self.template, "language", "nb"),
            llm=self.engine.model_id if self.engine else None,
        )
        if self.options.add_omitted:
            add_omitted(draft, utterances)
        return draft

    def draft(self, utterances: Sequence[Utterance], dropped: int = 0) -> NoteDraft:
        """The whole draft: chunked if needed; extractive if there is no engine or it fails."""
        utterances = list(utterances)
        if not utterances:
            return empty_draft(self.template, dropped)
        if self.engine is None:
            return extractive_draft(self.template, utterances, "ingen språkmodell er konfigurert")
        try:
            if self.options.strategy == "lines":
                return self.merge([self.draft_partial(utterances)], utterances)
            chunks = chunk_utterances(utterances, self.budget(), self._count)
            partials = []
            for i, chunk in enumerate(chunks, 1):
                if self.on_progress:
                    self.on_progress(f"utkast del {i}/{len(chunks)}")
                partials.append(self.draft_partial(chunk))
            return self.merge(partials, utterances)
        except LlmError as exc:
            logger.warning("drafting with the language model failed, falling back to extractive: %s", exc)
            draft = extractive_draft(self.template, utterances, str(exc))
            draft.flags.append(Flag("llm_error", str(exc)))
            return draft

