"""Post-correction of misheard drug names and template terms (issue #20).

The examples are written for this test (not taken from the shared consultations): a
misheard drug near its name, ordinary words near a drug name, inflections, a split name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.types import Segment, Word
from summarize.grounding.asr_correction import NorwegianWords, TermCorrector, norwegian_words


@pytest.fixture
def words_file(tmp_path: Path) -> NorwegianWords:
    p = tmp_path / "bokmaal"
    p.write_bytes("\n".join(["morgen", "metoden", "sertifikat", "kneet", "økte", "Amalie", "løpet"]).encode("latin-1") + b"\n")
    return NorwegianWords([p])


def ws(text: str, probability: float = 0.3) -> tuple[Word, ...]:
    out, t = [], 0.0
    for w in text.split():
        out.append(Word(" " + w, t, t + 0.3, probability))
        t += 0.4
    return tuple(out)


def fixed(corrector: TermCorrector, text: str, probability: float = 0.3) -> str:
    words, _ = corrector.correct(ws(text, probability))
    return "".join(w.word for w in words).strip()


def test_misheard_drug_names_become_the_lexicon_name(words_file: NorwegianWords) -> None:
    c = TermCorrector(dictionary=words_file)
    assert fixed(c, "hun bruker amlodipien fem milligram") == "hun bruker amlodipin fem milligram"
    assert fixed(c, "vi starter med sertralim.") == "vi starter med sertralin."
    assert fixed(c, "Atorvastatim ble seponert") == "Atorvastatin ble seponert"  # capital kept


def test_an_inflection_survives_the_correction(words_file: NorwegianWords) -> None:
    c = TermCorrector(dictionary=words_file)
    assert fixed(c, "vi øker metforminnen") == "vi øker metforminen"


def test_real_words_and_confident_words_are_left_alone(words_file: NorwegianWords) -> None:
    c = TermCorrector(dictionary=words_file)
    assert fixed(c, "i morgen prøver vi metoden") == "i morgen prøver vi metoden"
    assert fixed(c, "hun bruker amlodipien", probability=0.95) == "hun bruker amlodipien"
    assert fixed(c, "han spiller fotball hver tirsdag") == "han spiller fotball hver tirsdag"
    assert fixed(c, "sertifikat") == "sertifikat"


def test_a_split_drug_name_is_joined(words_file: NorwegianWords) -> None:
    c = TermCorrector(dictionary=words_file)
    words, changes = c.correct(ws("hun tar amlo dipin daglig"))
    assert "".join(w.word for w in words).strip() == "hun tar amlodipin daglig"
    assert changes[0].term == "amlodipin" and words[2].end == pytest.approx(1.5)


def test_template_vocabulary_terms_are_corrected_too(words_file: NorwegianWords) -> None:
    c = TermCorrector(["Lachman", "McMurray", "pivot shift"], dictionary=words_file)
    assert fixed(c, "positiv Lakmann test") == "positiv Lachman test"


def test_the_corrected_word_keeps_its_low_probability_and_the_segment_its_times(words_file: NorwegianWords) -> None:
    c = TermCorrector(dictionary=words_file)
    seg = Segment(3, 1.0, 3.0, "bruker amlodipien", ws("bruker amlodipien", 0.4), 3.5, "pasient", 1)
    out, changes = c.correct_segment(seg)
    assert out.text == "bruker amlodipin" and changes[0].heard == "amlodipien"
    assert out.words[1].probability == 0.4 and (out.id, out.start, out.end, out.speaker) == (3, 1.0, 3.0, "pasient")


def test_without_word_lists_only_very_unsure_words_are_corrected(tmp_path: Path) -> None:
    c = TermCorrector(dictionary=NorwegianWords([tmp_path / "missing"]))
    assert fixed(c, "amlodipien", probability=0.5) == "amlodipien"
    assert fixed(c, "amlodipien", probability=0.2) == "amlodipin"


def test_debians_norwegian_word_lists_are_installed_and_read() -> None:
    words = norwegian_words()
    assert words.available, "apt-get install wnorwegian (install.sh does this)"
    assert "hjerte" in words and "kneet" in words and "sykepleier" in words  # bokmål
    assert "eg" in words or "ikkje" in words  # nynorsk
    assert "amlodipien" not in words and "amlodipin" not in words
