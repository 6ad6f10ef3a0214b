"""Drafts from the transcript's own sentences, without a model: the extractive fallback,
the empty draft, the template preview, and the numbers and drug names a model left out."""

from __future__ import annotations

from collections.abc import Sequence

from summarize.draft.evidence import _terms
from summarize.draft.journal_style import journal_sentence
from summarize.draft.sentences import SENTENCE_SPLIT, section_for
from summarize.grounding.numbers import normalize_numbers
from summarize.types import Flag, NoteDraft, NoteSection, Sentence, Utterance


def extractive_draft(template: object, utterances: Sequence[Utterance], reason: str) -> NoteDraft:
    """The kept sentences themselves, grouped by section by simple cues; marked extractive."""
    ids = [s.id for s in template.sections]  # type: ignore[attr-defined]
    per: dict[str, list[Sentence]] = {i: [] for i in ids}
    for u in utterances:
        for sent in SENTENCE_SPLIT.split(normalize_numbers(u.text)):
            sent = sent.strip()
            if len(_terms(sent)) < 2 or sent.endswith("?"):
                continue  # fillers ("Ja.", "Mm.") and the clinician's questions
            written = journal_sentence(sent, u.speaker)
            if written:
                per[section_for(sent, u.speaker, ids)].append(Sentence(written, (u.id,)))
    sections = [NoteSection(s.id, s.title, per[s.id]) for s in template.sections]  # type: ignore[attr-defined]
    return NoteDraft(
        template_id=template.id,  # type: ignore[attr-defined]
        template_version=str(template.version),  # type: ignore[attr-defined]
        sections=sections,
        flags=[Flag("extractive", f"Uttrekk fra transkripsjonen, ikke skrevet av språkmodell: {reason}")],
        extractive=True,
        language=getattr(template, "language", "nb"),
    )


def empty_draft(template: object, dropped: int) -> NoteDraft:
    """All of the conversation was small talk: say so instead of inventing a note."""
    msg = (
        "Samtalen inneholdt ikke klinisk innhold som kan dokumenteres"
        f" ({dropped} segment(er) ble vurdert som småprat og kan gjenopprettes)."
    ) if dropped else "Ingen tale ble gjenkjent i opptaket; det er ingenting å dokumentere."
    return NoteDraft(
        template_id=template.id,  # type: ignore[attr-defined]
        template_version=str(template.version),  # type: ignore[attr-defined]
        sections=[NoteSection(s.id, s.title, []) for s in template.sections],  # type: ignore[attr-defined]
        flags=[Flag("empty", msg)],
        language=getattr(template, "language", "nb"),
    )


def _items(text: str) -> tuple[set[str], set[str]]:
    """Quantities (canonical values) and drug names (canonical) in ``text``."""
    from summarize.grounding.quantities import extract_quantities
    from summarize.grounding.verify import canonical_drug, find_drugs

    norm = normalize_numbers(text)
    values = {q.value for q in extract_quantities(norm, normalized=True)}
    return values, {canonical_drug(d) for d in find_drugs(norm, fuzzy=False)}


def add_omitted(draft: NoteDraft, utterances: Sequence[Utterance]) -> None:
    """Small models drop numbers and drug names; the clinician needs them. Every
    transcript sentence (not a question) with a quantity or drug name the draft does not
    contain is added to its section (by simple cues) with its evidence, and flagged."""
    have_q, have_d = _items(draft.text)
    ids = [s.id for s in draft.sections]
    for u in utterances:
        for sent in SENTENCE_SPLIT.split(normalize_numbers(u.text)):
            sent = sent.strip()
            if not sent or sent.endswith("?") or sent.endswith("–"):
                continue
            q, d = _items(sent)
            new_q, new_d = q - have_q, d - have_d
            if not new_q and not new_d:
                continue
            target = draft.section(section_for(sent, u.speaker, ids))
            assert target is not None
            written = journal_sentence(sent, u.speaker) or sent
            target.sentences.append(Sentence(written, (u.id,)))
            have_q |= q
            have_d |= d
            items = ", ".join(sorted(new_q | new_d))
            draft.flags.append(Flag("added_from_transcript", items, target.id, written))


def quick_draft(template: object, transcript_path: object) -> NoteDraft:
    """An extractive preview of ``template`` on a transcript file (``scribe templates
    render``): small talk filtered, clinical sentences grouped by section, no model."""
    from pathlib import Path

    from summarize.draft.smalltalk import SmallTalkFilter
    from summarize.transcript_io import read_transcript

    filtered = SmallTalkFilter().filter(read_transcript(Path(str(transcript_path))))
    if not filtered.kept:
        return empty_draft(template, len(filtered.dropped))
    return extractive_draft(template, filtered.kept_utterances, "forhåndsvisning av malen uten språkmodell")
