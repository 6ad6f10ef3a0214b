"""Spoken self-corrections: found, resolved before drafting, and a draft that keeps the
retracted value is flagged (issue #16, "retractions are safety issues").

The examples are written for this test (not taken from the shared consultations, which
have none); the mutation test also plants corrections into the shared consultations."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml

from summarize.draft.note import make_note
from summarize.draft.retractions import find_retractions, resolve, resolve_utterances
from summarize.grounding.numbers import normalize_numbers
from summarize.grounding.verify import Verifier
from summarize.templates.template import load_template
from summarize.types import NoteDraft, NoteSection, Sentence, Utterance
from tests.fakes import FakeLlm

# (said, kind, retracted, corrected, resolved)
CORRECTIONS = [
    ("Metoprolol femti ... nei, tjuefem milligram to ganger daglig", "number", "50", "25",
     "Metoprolol 25 mg 2 ganger daglig"),
    ("Ta tre, nei, fire ganger om dagen.", "number", "3", "4", "Ta 4 ganger om dagen."),
    ("Det gjelder venstre – unnskyld, høyre kne.", "side", "venstre", "høyre", "Det gjelder høyre kne."),
    ("Kontroll på tirsdag, nei, onsdag.", "weekday", "tirsdag", "onsdag", "Kontroll på onsdag."),
    ("Vi gir 50 mg, nei, det skal være 25 mg.", "number", "50", "25", "Vi gir 25 mg."),
    ("Smertene startet for to år siden, nei, tre.", "number", "2", "3", "Smertene startet for 3 år siden."),
    ("Han bruker Paracet, nei, Ibux 400 mg.", "drug", "Paracet", "Ibux", "Han bruker Ibux 400 mg."),
    ("Blodtrykket var 150/90, eller nei, 160/95.", "number", "150/90", "160/95", "Blodtrykket var 160/95."),
    ("Eg skriv ut fem, orsak, ti milligram.", "number", "5", "10", "Eg skriv ut 10 mg."),
    ("Hun har hatt feber i fire dager, unnskyld, jeg mener fem dager.", "number", "4", "5",
     "Hun har hatt feber i 5 dager."),
    ("Høgre, nei vent, venstre ankel er hoven.", "side", "Høgre", "venstre", "venstre ankel er hoven."),
]

NOT_CORRECTIONS = [
    "Har du hatt feber? Nei, 38 i går.",
    "Pulsen er 88, nei, ikke bekymret for den, 2 ganger i uka trener hun.",
    "Du får penicillin, altså fenoksymetylpenicillin, 1,3 gram fire ganger om dagen.",
    "Dosen er 2 tabletter, altså 1000 mg.",
    "BT 140/90. Nei, det er for høyt.",
    "Jeg tar 2, altså i hvert fall 2 tabletter.",
    "Nei, ingen smerter nå, og 3 uker siden sist.",
    "Paracet, altså paracetamol, 1 g ved behov.",
    "Venstre side er fin, nei, ingen hevelse der.",
]


@pytest.mark.parametrize(("said", "kind", "retracted", "corrected", "resolved"), CORRECTIONS)
def test_a_self_correction_is_found_and_resolved(said: str, kind: str, retracted: str, corrected: str,
                                                 resolved: str) -> None:
    found = find_retractions(said)
    assert [(r.kind, r.retracted, r.corrected) for r in found] == [(kind, retracted, corrected)]
    assert resolve(said) == resolved


@pytest.mark.parametrize("said", NOT_CORRECTIONS)
def test_answers_clarifications_and_restatements_are_not_corrections(said: str) -> None:
    assert find_retractions(said) == []
    assert resolve(said) == said


def test_resolve_keeps_ids_times_and_speakers() -> None:
    utts = [Utterance(7, "Metoprolol femti, nei, tjuefem mg.", 1.0, 3.0, "lege"), Utterance(8, "Greit.", speaker="pasient")]
    out = resolve_utterances(utts)
    assert [(u.id, u.start, u.end, u.speaker) for u in out] == [(7, 1.0, 3.0, "lege"), (8, None, None, "pasient")]
    assert out[0].text == "Metoprolol 25 mg." and out[1] is utts[1]


def _draft(*sentences: str) -> NoteDraft:
    return NoteDraft("t", "1", [NoteSection("plan", "Plan", [Sentence(s) for s in sentences])])


@pytest.mark.parametrize(("said", "kind", "retracted", "corrected", "resolved"), CORRECTIONS)
def test_a_draft_with_the_retracted_value_is_flagged_and_the_corrected_passes(
        said: str, kind: str, retracted: str, corrected: str, resolved: str) -> None:
    transcript = [Utterance(0, said, speaker="lege")]
    good = Verifier().verify(_draft(resolved), transcript)
    assert not [f for f in good if f.kind != "no_evidence"], good
    bad_text = re.sub(rf"\b{re.escape(corrected)}\b", retracted, resolved, count=1)
    flags = Verifier().verify(_draft(bad_text), transcript)
    assert [f.kind for f in flags if f.kind == "retracted_value"], (bad_text, flags)
    assert any(f"rettet til {corrected}" in f.text for f in flags)


def test_a_retracted_value_said_again_elsewhere_is_supported() -> None:
    transcript = [Utterance(0, "Metoprolol 50, nei, 25 mg.", speaker="lege"),
                  Utterance(1, "Vekten er 50 kilo.", speaker="lege")]
    flags = Verifier().verify(_draft("Vekt 50 kg."), transcript)
    assert not [f for f in flags if f.kind in ("retracted_value", "unsupported_number")]


def test_mutation_retracted_value_planted_in_every_consultation_is_flagged_every_time(consultations_dir: Path) -> None:
    """For every number of every reference note that the transcript says: make the
    transcript retract an invented value in its favour ("X" → "Y … nei, X"), put Y into
    the note sentence, and expect a ``retracted_value`` flag. Every time."""
    from tests.summarize.test_verify import note_to_draft

    rng = random.Random(16)
    verifier = Verifier()
    total = caught = 0
    missed = []
    number = r"(?<![\w,/])(\d+(?:,\d+)?(?:/\d+)?)(?![\d/]|,\d)"
    for path in sorted(consultations_dir.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        note = note_to_draft(data["reference_note"])
        turns = [Utterance(i, normalize_numbers(t["text"]), speaker=t.get("speaker"))
                 for i, t in enumerate(data["turns"])]
        said = " ".join(t.text for t in turns)
        for sec in note.sections:
            for k, sent in enumerate(sec.sentences):
                for m in re.finditer(number, sent.text):
                    x = m.group(1)
                    at = re.compile(rf"(?<![\w,/]){re.escape(x)}(?![\d/]|,\d)")
                    turn = next((t for t in turns if at.search(t.text)), None)
                    head = int(re.match(r"\d+", x).group(0))  # type: ignore[union-attr]
                    y = str(head + rng.choice([1, 2, 3, 5, 10])) + x[len(str(head)):]
                    if turn is None or re.search(rf"(?<![\d,/]){re.escape(y)}(?![\d/]|,\d)", said):
                        continue
                    planted = [Utterance(t.id, at.sub(f"{y} … nei, {x}", t.text, count=1), speaker=t.speaker)
                               if t is turn else t for t in turns]
                    mutated = NoteDraft(note.template_id, "1", [
                        NoteSection(s.id, s.title, [Sentence(sent.text[:m.start()] + y + sent.text[m.end():])
                                                   if (s is sec and j == k) else x_ for j, x_ in enumerate(s.sentences)])
                        for s in note.sections])
                    total += 1
                    flags = verifier.verify(mutated, planted)
                    if any(f.kind == "retracted_value" and f.text.startswith(y) for f in flags):
                        caught += 1
                    else:
                        missed.append((path.stem, y, x, [(f.kind, f.text) for f in flags]))
    print(f"retracted-value mutations: {caught}/{total}")
    assert total >= 20
    assert caught == total, missed


def test_the_drafter_never_sees_a_retracted_value_and_the_note_has_the_corrected_one() -> None:
    said = [Utterance(0, "Hvordan går det med blodtrykket?", speaker="lege"),
            Utterance(1, "Det har vært høyt, og jeg er svimmel om morgenen.", speaker="pasient"),
            Utterance(2, "Vi starter Metoprolol femti ... nei, tjuefem milligram to ganger daglig.", speaker="lege")]
    llm = FakeLlm(lambda msgs: "Plan: Starter Metoprolol 25 mg x 2." if "Metoprolol" in msgs[-1].content
                  else "Anamnese: Høyt blodtrykk og svimmelhet om morgenen.")
    result = make_note(said, load_template("allmennmedisin"), llm)
    prompts = [m.content for call in llm.calls + llm.structured_calls for m in call[-1:]]
    assert prompts and not any(re.search(r"\b50\b", p) for p in prompts), prompts
    assert "25 mg" in result.draft.text and not re.search(r"\b50\b", result.draft.text)
    assert not [f for f in result.flags if f.kind == "retracted_value"]
