"""Spoken → written (issue #16): sentences in journal style, by who said them.

Every example here is written for this test, in the situations a consultation has (a
patient's history, a relative's account, a clinician's findings, prescriptions and
instructions); none is taken from the shared consultations."""

from __future__ import annotations

import pytest

from benchmarks.note_quality import journal_defects
from summarize.draft.journal_style import is_address, journal_sentence

CASES = [
    ("pasient", "Ja, altså, jeg har hatt vondt i kneet mitt i tre uker.", "Har hatt vondt i kneet i tre uker."),
    ("pasient", "Nå har jeg vondt hele tiden, og jeg føler meg sliten.", "Har vondt hele tiden, og føler seg sliten."),
    ("pasient", "Jeg har aldri røykt.", "Har aldri røykt."),
    ("pasient", "Eg har hatt vondt i ryggen sidan jul.", "Har hatt vondt i ryggen sidan jul."),
    ("pasient", "Min mor hadde diabetes.", "Pasientens mor hadde diabetes."),
    ("pasient", "Hun sier at jeg snorker, og hun har sett meg slutte å puste.",
     "Hun sier at pasienten snorker, og hun har sett pasienten slutte å puste."),
    ("pasient", "Det stikker som en kniv når jeg går i trapper.",
     "Det stikker «som en kniv» når pasienten går i trapper."),
    ("pasient", "Eh, jeg sover liksom dårlig, og jeg er trett om dagen.", "Sover dårlig, og er trett om dagen."),
    ("pårørende", "Mora mi har begynt å glemme ting.", "Pasienten har begynt å glemme ting."),
    ("pårørende", "Han glemmer avtaler, og jeg må minne ham på alt.",
     "Han glemmer avtaler, og pårørende må minne ham på alt."),
    ("lege", "Da tar vi blodprøver, og du må ta med deg urinprøve.",
     "Tar blodprøver, og pasienten må ta med seg urinprøve."),
    ("lege", "Jeg skriver ut Zyrtec, 10 mg en gang om kvelden.", "Skriver ut Zyrtec, 10 mg en gang om kvelden."),
    ("lege", "Jeg tror det er en forstuing.", "Trolig en forstuing."),
    ("lege", "Blodtrykket ditt er 150/90.", "Blodtrykket er 150/90."),
    ("lege", "Vi ses om tre uker.", "Kontroll om tre uker."),
    ("lege", "Du må huske å ta tablettene.", "Må ta tablettene."),
    ("lege", "Husk å ta med deg listen.", "Skal ta med seg listen."),
    ("lege", "I dag måler jeg blodtrykket ditt til 150/90.", "I dag måles blodtrykket til 150/90."),
    ("lege", "Jeg henviser deg til fysioterapeut.", "Henviser pasienten til fysioterapeut."),
    ("lege", "Du har fått en ankelforstuing, men det er ikke brudd.",
     "Har fått en ankelforstuing, men det er ikke brudd."),
    ("lege", "Så langt ingen bivirkninger.", "Så langt ingen bivirkninger."),  # "så" carries meaning here
    ("lege", "Hvis du får omgangssyke, tar du pause med tablettene.",
     "Hvis pasienten får omgangssyke, tar pasienten pause med tablettene."),
    ("lege", "Ring oss eller legevakten hvis det blir verre.", "Ring behandler eller legevakten hvis det blir verre."),
    ("lege", "Ingen fotball før vi har sett MR-bildene.", "Ingen fotball før man har sett MR-bildene."),
    ("lege", "Du fikk 24 av 30 poeng.", "Fikk 24/30."),
    ("lege", "Og blodprøvene fra forrige uke var fine.", "Blodprøvene fra forrige uke var fine."),
    ("lege", "Prøv å kutte ned på saltet.", "Anbefalt å kutte ned på saltet."),
    ("pasient", "Det er omtrent som hjemme, da.", "Det er omtrent som hjemme."),
    ("pårørende", "Mamma har glemt to avtaler, og vi ble bekymret.",
     "Pasienten har glemt to avtaler, og pårørende ble bekymret."),
]


@pytest.mark.parametrize(("speaker", "said", "written"), CASES)
def test_spoken_sentence_becomes_journal_language(speaker: str, said: str, written: str) -> None:
    assert journal_sentence(said, speaker) == written
    assert journal_defects(written) == [], written


@pytest.mark.parametrize("said", [
    "Har du hatt feber?", "Legg deg ned på benken.", "Kan du bøye kneet for meg?", "La meg lytte på lungene.",
    "Ja.", "Eh ... ja, altså.", "Sett deg her, du.",
])
def test_questions_instructions_and_fillers_give_no_sentence(said: str) -> None:
    assert journal_sentence(said, "lege") is None
    assert is_address(said) or not journal_sentence(said, "lege")


def test_numbers_ratios_and_decimals_are_kept_exactly() -> None:
    out = journal_sentence("Jeg har målt blodtrykket til 152/94 og vekten din er 81,5 kg.", "lege")
    assert out is not None and "152/94" in out and "81,5 kg" in out


def test_unknown_speaker_treats_first_person_as_the_patient_and_we_as_the_clinic() -> None:
    assert journal_sentence("Jeg har hatt hoste i to uker.", None) == "Har hatt hoste i to uker."
    assert journal_sentence("Vi tar en CRP.", None) == "Tar en CRP."
