"""Norwegian number words, decimal comma, ratios, units and quantity extraction."""

from __future__ import annotations

import pytest

from summarize.grounding.number_words import is_number_word, parse_number
from summarize.grounding.numbers import normalize_numbers
from summarize.grounding.quantities import extract_quantities, quantity_supports
from summarize.grounding.units import normalize_units, unit_info


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        # simple and teens
        ("null", "0"),
        ("fem", "5"),
        ("sju", "7"),
        ("syv", "7"),
        ("tolv", "12"),
        ("nitten", "19"),
        # tens, bokmål and old forms
        ("tjue", "20"),
        ("tyve", "20"),
        ("tredve", "30"),
        ("førti", "40"),
        ("nitti", "90"),
        # compounds together, hyphenated, apart, nynorsk "-ein"
        ("førtiåtte", "48"),
        ("førti-åtte", "48"),
        ("førti åtte", "48"),
        ("åttito", "82"),
        ("nittien", "91"),
        ("sekstien", "61"),
        ("trettien", "31"),
        ("tretten", "13"),
        ("tjueen", "21"),
        ("tjueein", "21"),
        ("femogtjue", "25"),
        ("enogtyve", "21"),
        # hundreds and thousands
        ("hundre", "100"),
        ("hundre og førti", "140"),
        ("et hundre og førti", "140"),
        ("eit hundre og førti", "140"),
        ("ett hundre og femti", "150"),
        ("to hundre og femti", "250"),
        ("tohundreogfemti", "250"),
        ("tre hundre og tjue", "320"),
        ("tusen", "1000"),
        ("to tusen og tjuefire", "2024"),
        ("tusen fem hundre", "1500"),
        # decimals with the Norwegian decimal comma
        ("fire komma en", "4,1"),
        ("to komma en", "2,1"),
        ("trettiåtte komma ni", "38,9"),
        ("én komma to", "1,2"),
        ("en komma fem", "1,5"),
        ("to komma null fem", "2,05"),
        ("4 komma 1", "4,1"),
        # halves
        ("halvannen", "1,5"),
        ("halvanna", "1,5"),
        ("to og en halv", "2,5"),
        ("½", "0,5"),
        ("1½", "1,5"),
    ],
)
def test_number_words(spoken: str, written: str) -> None:
    assert normalize_numbers(spoken) == written


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        # blood pressure
        ("hundre og femti over nittifem", "150/95"),
        ("Hundre og trettifem over åttifire.", "135/84."),
        ("målet er under hundre og tretti over åtti", "målet er under 130/80"),
        ("BT 160 over 95", "BT 160/95"),
        ("litt over to uker", "litt over 2 uker"),
        ("fem over ti", "5 over 10"),  # not a blood pressure
        # units
        ("lisinopril ti milligram", "lisinopril 10 mg"),
        ("Levaxin femti mikrogram", "Levaxin 50 µg"),
        ("Levaxin 50 mcg", "Levaxin 50 µg"),
        ("hun veier sekstitre kilo nå", "hun veier 63 kg nå"),
        ("metning 94 prosent", "metning 94 %"),
        ("ti enheter insulin", "10 IE insulin"),
        ("ti einingar insulin", "10 IE insulin"),
        ("femti milliliter", "50 ml"),
        ("én komma fem gram", "1,5 g"),
        ("natrium hundre og førti millimol per liter", "natrium 140 mmol/l"),
        ("5mg", "5 mg"),
        ("milligram uten tall", "milligram uten tall"),
        # articles: only numeric with a unit, time span, count noun or frequency
        ("tas en time etter frokost", "tas 1 time etter frokost"),
        ("sykmelder deg i en uke", "sykmelder deg i 1 uke"),
        ("for ett år siden", "for 1 år siden"),
        ("ein dag", "1 dag"),
        ("ei veke", "1 veke"),
        ("Et glass melk", "1 glass melk"),
        ("en tablett om kvelden", "1 tablett om kvelden"),
        ("ett gram inntil tre ganger i døgnet", "1 g inntil 3 ganger i døgnet"),
        ("en gang daglig", "1 gang daglig"),
        ("ein gong dagleg", "1 gong dagleg"),
        ("én gang om dagen", "1 gang om dagen"),
        ("en halv tablett", "0,5 tablett"),
        ("en og en halv time", "1,5 time"),
        ("en til to tabletter", "1 til 2 tabletter"),
        ("en eller to ganger", "1 eller 2 ganger"),
        ("en eller annen", "en eller annen"),
        ("null komma fem milligram", "0,5 mg"),
        ("ti tusen enheter", "10000 IE"),
        ("med en gang", "med en gang"),
        ("en gang i blant", "en gang i blant"),
        ("en ny tablett", "en ny tablett"),
        ("en hel uke", "en hel uke"),
        ("et par dager", "et par dager"),
        ("ett eller annet", "ett eller annet"),
        ("et tre i hagen", "et tre i hagen"),
        ("en god venn", "en god venn"),
        # "to" is the number
        ("to ganger daglig", "2 ganger daglig"),
        ("to til fire uker", "2 til 4 uker"),
        ("to-tre ganger", "2-3 ganger"),
        ("type to-diabetes", "type 2-diabetes"),
        # ordinals before a month are dates; clock
        ("tredje mars", "3. mars"),
        ("den tjueførste mai", "den 21. mai"),
        ("fyrste januar", "1. januar"),
        ("andre mann", "andre mann"),
        ("klokka halv tre", "klokka 2.30"),
        ("våkner klokka fire", "våkner klokka 4"),
        # zero of N
        ("ingen av de fem ordene", "0 av de 5 ordene"),
        # words that only contain number words
        ("hundrevis av", "hundrevis av"),
        ("andreplass i tredjedivisjon", "andreplass i tredjedivisjon"),
        ("Eiketreet", "Eiketreet"),
        ("B12 er fire hundre og ti", "B12 er 410"),
        ("SpO2 96 %", "SpO2 96 %"),
        ("x1", "x 1"),
    ],
)
def test_running_text(spoken: str, written: str) -> None:
    assert normalize_numbers(spoken) == written


def test_longer_sentence_bokmal_and_nynorsk() -> None:
    nb = "Hun bruker lisinopril ti milligram, én gang om dagen, og kreatinin sekstifem."
    assert normalize_numbers(nb) == "Hun bruker lisinopril 10 mg, 1 gang om dagen, og kreatinin 65."
    nn = (
        "Ho tek eit hundre og tjue milligram ein gong dagleg i tre veker, "
        "og vekta er sekstien kilo."
    )
    assert normalize_numbers(nn) == "Ho tek 120 mg 1 gong dagleg i 3 veker, og vekta er 61 kg."


def test_normalize_is_idempotent() -> None:
    texts = [
        "BT 148/94, puls 72, kalium 4,1 mmol/l, 5 mg x 1, 96 %, 3. mars, kl. 14.30",
        "hundre og seksti over hundre, tre komma sju, ti milligram, en uke",
    ]
    for t in texts:
        once = normalize_numbers(t)
        assert normalize_numbers(once) == once


def test_normalize_units_only_after_numbers() -> None:
    assert normalize_units("5 milligram og litt milligram") == "5 mg og litt milligram"
    assert normalize_units("4,1 millimol per liter") == "4,1 mmol/l"
    assert normalize_units("75 μg") == "75 µg"  # Greek mu to micro sign


def test_parse_number_and_number_words() -> None:
    assert parse_number("hundre og trettifem") == 135
    assert parse_number("to tusen og tjuefire") == 2024
    assert parse_number("fem hundre tusen") == 500_000
    assert parse_number("kreatinin") is None
    assert is_number_word("førtiåtte")
    assert is_number_word(" 72,")
    assert is_number_word("ett")
    assert is_number_word("halvannen")
    assert not is_number_word("en")
    assert not is_number_word("tredje")
    assert not is_number_word("amlodipin")


def _q(text: str) -> list[tuple[str, str, str | None]]:
    return [(q.kind, q.value, q.unit) for q in extract_quantities(text)]


def test_extract_digits_and_decimal_comma_or_point() -> None:
    assert _q("Puls 72, kalium 4,1 og 4.1") == [
        ("number", "72", None),
        ("number", "4,1", None),
        ("number", "4,1", None),
    ]
    assert _q("temp 38,60") == [("number", "38,6", None)]
    assert _q("1.000 mg og 10 000 IE") == [("dose", "1000", "mg"), ("dose", "10000", "IE")]


def test_extract_ratios_doses_percent_dates() -> None:
    assert _q("BT 140/90 og hundre og seksti over hundre") == [
        ("ratio", "140/90", None),
        ("ratio", "160/100", None),
    ]
    assert _q("MMSE tjuesju av tretti") == [("ratio", "27/30", None)]
    assert _q("lisinopril ti milligram x 1") == [("dose", "10", "mg"), ("number", "1", None)]
    assert _q("SpO2 94 prosent") == [("percent", "94", "%")]
    assert _q("kreatinin 71 µmol/l") == [("dose", "71", "µmol/l")]
    assert _q("tredje mars") == [("date", "3.3.", None)]
    assert _q("3. mars 2025 og 12.03.2024") == [
        ("date", "3.3.2025", None),
        ("date", "12.3.2024", None),
    ]
    assert _q("kontroll den 3.4. kl. 14.30") == [("date", "3.4.", None), ("time", "14:30", None)]
    assert _q("sertralin 25-50 mg, sover 4-5 timer") == [
        ("dose", "25", "mg"),
        ("dose", "50", "mg"),
        ("number", "4", None),
        ("number", "5", None),
    ]


def test_digits_glued_to_letters_are_names() -> None:
    assert _q("SpO2 HbA1c B12 T4") == []
    assert _q("Type 2-diabetes") == [("number", "2", None)]


def test_quantity_text_for_flags() -> None:
    (q,) = extract_quantities("Levaxin femti mikrogram")
    assert q.text == "50 µg"
    (r,) = extract_quantities("BT 135/84")
    assert r.text == "135/84"


def _one(text: str):
    (q,) = extract_quantities(text)
    return q


def test_quantity_supports() -> None:
    assert quantity_supports(_one("5 mg"), _one("5 mg"))
    assert not quantity_supports(_one("5 mg"), _one("50 mg"))
    assert not quantity_supports(_one("5 mg"), _one("5 g"))
    assert quantity_supports(_one("tusen milligram"), _one("1 g"))
    assert quantity_supports(_one("75 mcg"), _one("75 µg"))
    assert quantity_supports(_one("5 mg"), _one("5"))  # a dose's number supports a bare number
    assert not quantity_supports(_one("5"), _one("5 mg"))  # a bare number does not support a dose
    assert quantity_supports(_one("71"), _one("71 µmol/l"))  # lab unit added by the clinician
    assert not quantity_supports(_one("71 mmol/l"), _one("71 µmol/l"))
    assert quantity_supports(_one("135/84"), _one("135"))
    assert not quantity_supports(_one("135/84"), _one("135/85"))
    assert quantity_supports(_one("tredje mars"), _one("3. mars"))
    assert not quantity_supports(_one("tredje mars"), _one("3. mars 2030"))
    assert not quantity_supports(_one("tredje mars"), _one("3"))


def test_unit_info() -> None:
    assert unit_info("mg").family == "mass"
    assert unit_info("mmol/l").lab
    assert not unit_info("mg/dag").lab
    assert unit_info("furlong") is None
