"""The note-quality measures of ``benchmarks/note_quality.py``: journal-style defects and
the edit rate (issue #16), on sentences written for this test."""

from __future__ import annotations

import pytest

from benchmarks.note_quality import defect_share, edit_rate, journal_defects, note_sentences


@pytest.mark.parametrize(("sentence", "kinds"), [
    ("Pulsen din er 92 og regelmessig.", ["pronoun"]),
    ("Vi følger opp med ny time.", ["pronoun"]),
    ("Eg har hatt vondt i hofta.", ["pronoun"]),
    ("Altså, smertene kom i går.", ["filler"]),
    ("Hun har liksom ikke sovet.", ["filler"]),
    ("Når begynte det?", ["question"]),
    ("«Det stikker når jeg går.»", ["quoted"]),
    ("Sertralin 100 … nei, 50 mg x 1.", ["retraction"]),
    ("Faren hans.", ["fragment"]),
    ("Smerter «som et stikk» ved inspirasjon.", []),
    ("Temp 38,4.", []),
    ("Henvist til fysioterapi for knetrening.", []),
])
def test_journal_defects(sentence: str, kinds: list[str]) -> None:
    assert journal_defects(sentence) == kinds


def test_share_ignores_headings() -> None:
    note = "Anamnese:\nHoste i 5 dager. Du har feber.\nPlan:\nKontroll om 1 uke."
    assert note_sentences(note) == ["Hoste i 5 dager.", "Du har feber.", "Kontroll om 1 uke."]
    assert defect_share(note) == pytest.approx(1 / 3)


def test_edit_rate() -> None:
    ref = "Hoste i 5 dager. Kontroll om 1 uke."
    assert edit_rate(ref, ref) == 0.0
    assert edit_rate(ref, "hoste i fem dager kontroll om 1 uke") == pytest.approx(1 / 8)
    assert edit_rate(ref, "") == 1.0
