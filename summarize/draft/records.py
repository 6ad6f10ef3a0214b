"""Medications, vital signs and allergies as typed records, rendered in journal form.

    utterance with a drug, a dose, a measurement or an allergy cue
        ──structured call (JSON schema: :class:`Records`)──▶ Records
        ──grounded (every drug and number was said)──▶ "Metoprolol 50 mg x 2.", "BT 150/90, puls 88."

The schema is the one place the records are defined: it constrains llama.cpp's decoding
(the JSON always parses) and validates every engine's answer (see
:mod:`summarize.llm.structured`). The model only finds the parts; the words of the note
are written here, deterministically: doses as digits with canonical units, frequencies
as "x 2", decimal commas, the names of vital signs as a Norwegian journal writes them.

A record whose drug or numbers do not occur in the utterance is dropped (a small model
fills a schema with what the examples or the question said); a unit whose records are
all dropped keeps the model's sentences.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from summarize.grounding.numbers import normalize_numbers
from summarize.grounding.quantities import extract_quantities
from summarize.llm.base import ChatMessage
from summarize.types import Utterance

Action = Literal["new", "continue", "stop", "change", "unknown"]
VitalName = Literal["BT", "puls", "SpO2", "temp", "RF", "GCS", "vekt", "hoyde", "BMI", "Hb", "HbA1c", "CRP",
                    "glukose", "kreatinin", "eGFR", "kolesterol", "LDL", "annet"]


class Medication(BaseModel):
    """One medicine as said: substance (or brand), dose, unit, route, frequency, duration,
    and whether it is started, continued, stopped or changed."""

    substance: str = Field(max_length=60)
    dose: str | None = Field(default=None, max_length=20)
    unit: str | None = Field(default=None, max_length=12)
    route: str | None = Field(default=None, max_length=20)
    frequency: str | None = Field(default=None, max_length=40)
    duration: str | None = Field(default=None, max_length=30)
    action: Action = "unknown"


class Vital(BaseModel):
    """One measurement: a vital sign or a lab value, with its unit when said."""

    name: VitalName
    label: str | None = Field(default=None, max_length=30)
    value: str = Field(max_length=20)
    unit: str | None = Field(default=None, max_length=12)


class Allergy(BaseModel):
    substance: str = Field(max_length=40)
    reaction: str | None = Field(default=None, max_length=40)


class Prescribed(BaseModel):
    """What the model is asked for (the schema of the structured call): medications and
    allergies. Measurements are read deterministically (:func:`find_vitals`): asked for
    them, the 1.5B model listed every vital sign of the schema with invented values."""

    medications: list[Medication] = Field(default_factory=list, max_length=5)
    allergies: list[Allergy] = Field(default_factory=list, max_length=3)


class Records(BaseModel):
    """Everything structured one utterance holds (empty lists when it holds none)."""

    medications: list[Medication] = Field(default_factory=list, max_length=6)
    vitals: list[Vital] = Field(default_factory=list, max_length=8)
    allergies: list[Allergy] = Field(default_factory=list, max_length=4)

    def empty(self) -> bool:
        return not (self.medications or self.vitals or self.allergies)


# --------------------------------------------------------------------------- which utterances

_ALLERGY_CUE = re.compile(r"\b(allergi\w*|allergisk\w*|tåler ikke|tåler ikkje|reagert? på|overfølsom\w*)\b", re.I)
_DOSE_UNITS = frozenset({"mg", "g", "µg", "ml", "IE", "mmol"})
_COUNT_DOSE = re.compile(r"\b\d+(?:[.,]\d+)?\s+(?:tablett\w*|kapsl\w*|kapsel|dråpe\w*|dose\w*|puff\w*|"
                         r"spray\w*|inhalasjon\w*|stikk|plaster\w*|sprøyte\w*)\b", re.I)


def has_record_cue(text: str) -> bool:
    """Worth a structured call: a drug name, a dose or an allergy word (measurements are
    read without the model: :func:`find_vitals`)."""
    from summarize.grounding.drugs import find_drugs

    norm = normalize_numbers(text)
    if _ALLERGY_CUE.search(norm) or find_drugs(norm, fuzzy=False):
        return True
    qs = extract_quantities(norm, normalized=True)
    return any(q.kind == "dose" and (q.unit or "") in _DOSE_UNITS for q in qs) or bool(_COUNT_DOSE.search(norm))


# --------------------------------------------------------------------------- the call

SYSTEM = {
    "nb": ("Du henter ut strukturerte opplysninger fra én replikk i en legekonsultasjon. Svar bare med JSON. "
           "medications: legemidler som nevnes (substance som sagt, dose som tall, unit som mg/ml/IE, "
           "frequency som sagt, action: new = startes nå, continue = bruker fra før, stop = seponeres, "
           "change = dosen endres). allergies: allergier. Bare det som står i replikken; tomme lister "
           "når den ikke har noe."),
    "nn": ("Du hentar ut strukturerte opplysningar frå éi replikk i ei legekonsultasjon. Svar berre med JSON. "
           "medications: legemiddel som er nemnde (substance som sagt, dose som tal, unit som mg/ml/IE, "
           "frequency som sagt, action: new = startar no, continue = brukar frå før, stop = seponerast, "
           "change = dosen vert endra). allergies: allergiar. Berre det som står i replikken; tomme "
           "lister når han ikkje har noko."),
}

# invented examples, each with a different shape (one copied example made the 1.5B model
# repeat its drugs and values in every answer); the prefix (system + examples) is the same
# for every call, so llama.cpp evaluates it once per process
EXAMPLES: list[tuple[str, Prescribed]] = [
    ("Pasient: Jeg tar Paracet, to tabletter morgen og kveld. Og så tåler jeg ikke sulfa.",
     Prescribed(medications=[Medication(substance="Paracet", dose="2", unit="tabletter",
                                        frequency="morgen og kveld", action="continue")],
                allergies=[Allergy(substance="sulfa")])),
    ("Pasient: Ja, det var fint vær på hytta i helgen.", Prescribed()),
    ("Lege: Vi starter med Zyrtec 10 mg om kvelden, og du slutter med Nesespray.",
     Prescribed(medications=[Medication(substance="Zyrtec", dose="10", unit="mg", frequency="om kvelden",
                                        action="new"),
                             Medication(substance="Nesespray", action="stop")])),
]


def build_messages(text: str, speaker: str | None, lang: str = "nb") -> list[ChatMessage]:
    who = {"lege": "Lege", "pasient": "Pasient", "pårørende": "Pårørende"}.get(speaker or "", "Replikk")
    out = [ChatMessage("system", SYSTEM.get(lang, SYSTEM["nb"]))]
    for said, found in EXAMPLES:
        out += [ChatMessage("user", said), ChatMessage("assistant", found.model_dump_json(exclude_defaults=True))]
    return [*out, ChatMessage("user", f"{who}: {normalize_numbers(text)}")]


# --------------------------------------------------------------------------- grounding

_DIGITS = re.compile(r"\d+(?:[.,]\d+)?(?:/\d+)?")


def _numbers_in(text: str) -> set[str]:
    norm = normalize_numbers(text)
    out = {q.value for q in extract_quantities(norm, normalized=True)}
    out |= {m.group(0).replace(".", ",") for m in _DIGITS.finditer(norm)}
    return out


def _said(value: str | None, numbers: set[str]) -> bool:
    if not value:
        return True
    found = [m.group(0).replace(".", ",") for m in _DIGITS.finditer(value)]
    return all(f in numbers for f in found)


def _drug_said(name: str, source: str) -> bool:
    """A medicine the drug lexicon knows, named in the utterance ("Champions League" or
    "psykolog" is no medicine; a drug the lexicon lacks stays in the model's sentence)."""
    from summarize.grounding.drugs import canonical_drug, find_drugs

    named = {canonical_drug(d) for d in find_drugs(name, fuzzy=False)}
    said = {canonical_drug(d) for d in find_drugs(normalize_numbers(source), fuzzy=True)}
    return bool(named & said)


# what a vital sign is called when it is said; a value the model names without its word is
# not kept ("Du veier 91 kilo" is no blood pressure)
_VITAL_WORDS = {
    "BT": r"blodtrykk\w*|\bbt\b", "puls": r"puls\w*|hjertefrekvens\w*|\bhf\b",
    "SpO2": r"metning\w*|spo2|\bsat\w*|oksygen\w*", "temp": r"temp\w*|feber|grader",
    "RF": r"respirasjonsfrekvens\w*|\brf\b|pust\w*|andedrag\w*", "GCS": r"\bgcs\b|glasgow",
    "vekt": r"vekt\w*|\bveier\b|\bveide\b|kilo|\bkg\b", "hoyde": r"høyde|høg\w*|\bcm\b|centimeter",
    "BMI": r"\bbmi\b|kroppsmasseindeks", "Hb": r"\bhb\b|hemoglobin\w*|blodprosent\w*",
    "HbA1c": r"hba1c|langtidsblodsukker\w*|langtidssukker\w*", "CRP": r"\bcrp\b",
    "glukose": r"glukose|blodsukker\w*|sukker\w*", "kreatinin": r"kreatinin\w*", "eGFR": r"gfr",
    "kolesterol": r"kolesterol\w*", "LDL": r"\bldl\b",
}
_UNIT_SAID = {"µg": r"µg|mikrogram|mcg", "mg": r"\bmg\b|milligram", "g": r"\bg\b|gram", "ml": r"\bml\b|milliliter",
              "IE": r"\bie\b|enhet\w*|eining\w*", "mmol": r"mmol"}


_BT = re.compile(r"\d{2,3}/\d{2,3}")
_NEAR_BEFORE, _NEAR_AFTER = 40, 16  # characters: "metningen er 96 prosent", "96 i metning"


def _vital_said(v: Vital, low: str) -> bool:
    """The measurement's own word stands near its value ("Temperaturen er 38,6, metningen
    96": 96 is the saturation, not the temperature)."""
    if ("/" in v.value) != (v.name == "BT"):
        return False
    if v.name == "BT" and _BT.fullmatch(v.value.strip()):  # "148 over 94" needs no word
        high, low_ = (int(x) for x in v.value.strip().split("/"))
        if 60 <= high <= 260 and 30 <= low_ <= 160 and high > low_:
            return True
    words = re.escape(v.label.strip().lower()) if v.name == "annet" and v.label else _VITAL_WORDS.get(v.name)
    if not words:
        return False
    value = _decimal(v.value.split()[0]) if v.value.split() else v.value
    for m in re.finditer(r"(?<![\d,/])" + re.escape(value) + r"(?![\d]|,\d)", low.replace(".", ",")):
        window = low[max(0, m.start() - _NEAR_BEFORE): m.end() + _NEAR_AFTER]
        if re.search(words, window):
            return True
    return False


# plausible values (a number outside is another number: "feber i 3 dager" is no temperature)
_VITAL_RANGE = {"puls": (25, 250), "SpO2": (50, 100), "temp": (33, 43), "RF": (4, 70), "GCS": (3, 15),
                "vekt": (1, 350), "hoyde": (40, 230), "BMI": (10, 80), "Hb": (3, 25), "HbA1c": (4, 200),
                "CRP": (0, 600), "glukose": (1, 60), "kreatinin": (10, 2000), "eGFR": (2, 200),
                "kolesterol": (1, 20), "LDL": (0.3, 15)}
_AFTER_WORD = 28  # characters from the word to its number: "metningen er nå 96"
_NOT_A_VALUE = re.compile(r"^\s*(?!(?:ganger|gonger|slag|pust|andedrag)\s+(?:i|per|pr\.?|på)\s+minutt)"
                          r"(?:dager|dagar|uker|veker|måneder|månader|år|timer|døgn|ganger|gonger|gang|"
                          r"minutter|sekunder|tabletter|kilometer|km)\b", re.I)


_DOSE_UNIT = re.compile(r"^\s*(?:mg|milligram\w*|mikrogram|µg|mcg|ml|milliliter|g|gram|ie|"
                        r"tablett\w*|kapsl\w*|stk)\b", re.I)
_CHECKED_SIGNS = {
    "BT": r"\bblodtrykket\b|\bblodtrykk\b|\bbt\b", "puls": r"\bpuls(?:en)?\b",
    "SpO2": r"\bmetning(?:en)?\b|\bspo2\b|\bsaturasjon(?:en)?\b", "temp": r"\btemp(?:eratur(?:en)?)?\b",
}
_SIGN_VALUE = re.compile(r"^(?:\s*(?:er|var|på|ligger|lå|målt|til|nå|no|:|,))*\s*(\d+(?:,\d+)?)(/\d+)?(?!\d|,\d)")


def implausible_values(text: str) -> list[str]:
    """Vital signs in a note sentence that cannot be what the sentence says: a dose unit
    after a sign ("Blodtrykket var 8 mg"), a blood pressure without its second number and
    under 50 ("BT 3"), a pulse, saturation or temperature outside what a living patient
    has. A model that joins words from two sentences writes these; the verifier flags them
    (``implausible_value``) and the sentence is taken out like an unsupported number."""
    low = normalize_numbers(text).lower()
    out: list[str] = []
    for name, words in _CHECKED_SIGNS.items():
        for w in re.finditer(words, low):
            m = _SIGN_VALUE.match(low[w.end():])
            if m is None:
                continue
            item = low[w.start(): w.end() + m.end()]
            after = low[w.end() + m.end():]
            value = float(m.group(1).replace(",", "."))
            if _DOSE_UNIT.match(after):
                out.append(item + " " + after.split()[0])
            elif m.group(2) or _NOT_A_VALUE.match(after):
                continue
            elif name == "BT":
                if value < 50:
                    out.append(item)
            else:
                lo, hi = _VITAL_RANGE[name]
                if not lo <= value <= hi:
                    out.append(item)
    return out


_TARGET = re.compile(r"\b(?:under|over|mål\w*|ned mot|ned til|opp mot|grense\w*|bør|skal|ønsker?|helst)\b[^.]*$")


def find_vitals(text: str) -> list[Vital]:
    """Measurements read from the words, without the model: a blood pressure by its form
    ("148 over 94"), every other sign by its word with the first plausible number after it
    ("Temperaturen er 38,6, metningen 96 prosent"), in the order said, each sign once."""
    norm = normalize_numbers(text)
    low = norm.lower()
    found: list[tuple[int, Vital]] = []
    seen: set[str] = set()
    for m in re.finditer(r"(?<![\d/,])(\d{2,3})/(\d{2,3})(?![\d/])", norm):
        high, low_ = int(m.group(1)), int(m.group(2))
        if _TARGET.search(low[max(0, m.start() - 24): m.start()]):  # "målet er under 140/90": a goal
            continue
        if 60 <= high <= 260 and 30 <= low_ <= 160 and high > low_ and "BT" not in seen:
            found.append((m.start(), Vital(name="BT", value=m.group(0))))
            seen.add("BT")
    for name, (lo, hi) in _VITAL_RANGE.items():
        for w in re.finditer(_VITAL_WORDS[name], low):
            window = low[w.end(): w.end() + _AFTER_WORD]
            n = re.search(r"(?<![\w/])(\d+(?:,\d+)?)(?![\d/])", window)
            if n is None or _NOT_A_VALUE.match(window[n.end():]):
                continue
            between = window[: n.start()]
            if re.search(r"[.?!]", between) or any(re.search(_VITAL_WORDS[o], between) for o in _VITAL_RANGE if o != name):
                continue
            value = float(n.group(1).replace(",", "."))
            if lo <= value <= hi and name not in seen:
                found.append((w.start(), Vital.model_validate({"name": name, "value": n.group(1)})))
                seen.add(name)
                break
    return [v for _, v in sorted(found, key=lambda x: x[0])]


def _unit_said(unit: str | None, low: str) -> bool:
    if not unit or not unit.strip():
        return True
    canon = _UNIT_CANON.get(unit.strip().lower(), unit.strip())
    pattern = _UNIT_SAID.get(canon)
    return bool(re.search(pattern, low)) if pattern else canon.lower() in low


_DOSE_BEFORE, _DOSE_AFTER = 25, 60  # characters between a drug's name and its dose


def _dose_with_drug(m: Medication, low: str) -> bool:
    """The dose stands near the drug's own name ("Amlodipinen som før, og Losartan 50 mg": 50 mg
    is Losartan's)."""
    from summarize.grounding.drugs import find_drugs

    if not m.dose:
        return True
    digits = _DIGITS.search(m.dose)
    if digits is None:
        return False
    names = [m.substance.lower(), *(d.lower() for d in find_drugs(m.substance, fuzzy=False))]
    value = digits.group(0).replace(".", ",")
    for hit in re.finditer(r"(?<![\d,])" + re.escape(value) + r"(?![\d]|,\d)", low):
        before, after = low[max(0, hit.start() - _DOSE_AFTER): hit.start()], low[hit.end(): hit.end() + _DOSE_BEFORE]
        for name in names:
            stem = name[: max(4, len(name) - 2)]
            if stem in after and not _other_drug_between(after[: after.find(stem)]):
                return True
            k = before.rfind(stem)
            if k >= 0 and not _other_drug_between(before[k + len(stem):]):
                return True
    return False


def _other_drug_between(text: str) -> bool:
    from summarize.grounding.drugs import find_drugs

    return bool(find_drugs(text, fuzzy=False))


def _useful(m: Medication, patient: bool) -> bool:
    """A medicine named with nothing about its use ("Losartan kan påvirke nyrene") is no
    record, except from the patient (what they take) or when it is stopped."""
    return bool(m.dose or m.frequency) or m.action == "stop" or patient


_STOP_CUE = re.compile(r"\b(?:seponer\w*|slutt\w*|stopp\w*|avslutt\w*|kutt\w* ut|sett\w* ut|ta[rs]? bort|"
                       r"ikke lenger|ikkje lenger|ikke mer|ikkje meir|ikke bruke|ikkje bruke|trapp\w* ned og ut)\b", re.I)
_CONDITIONAL = re.compile(r"\b(?:hvis|dersom|viss|om du blir|når du blir|ved behov|ved oppkast|ved feber|"
                          r"pause\w*|til (?:du|pasienten|han|hun|ho|eg|jeg) er frisk\w*)\b", re.I)


def _stop_said(source: str) -> bool:
    """A medicine is stopped only when the words say so, unconditionally: "tar pause med
    Metformin til du er frisk" (the sick-day rule) is no stop, and no "Seponerer"."""
    return bool(_STOP_CUE.search(source)) and not _CONDITIONAL.search(source)


def grounded(records: Records, source: str, speaker: str | None = None) -> tuple[Records, int]:
    """Only what the utterance said: records whose drug, numbers, unit or vital-sign word
    are not in ``source`` are dropped, and so are medicines named with nothing about
    their use (see :func:`_useful`). Returns (kept, number dropped)."""
    numbers = _numbers_in(source)
    low = normalize_numbers(source).lower()
    patient = speaker in ("pasient", "pårørende")
    stop_said = _stop_said(source)
    actions = [m.model_copy(update={"action": "unknown"})
               if (m.action in ("new", "change") and not m.dose) or (m.action == "stop" and not stop_said) else m
               for m in records.medications]
    meds = [m for m in actions
            if _drug_said(m.substance, source) and _said(m.dose, numbers) and _DIGITS.search(m.dose or "0")
            and _unit_said(m.unit, low) and _useful(m, patient) and _dose_with_drug(m, low)]
    meds = [m for i, m in enumerate(meds) if m not in meds[:i]]  # the same record twice
    vitals = [v for v in records.vitals
              if _DIGITS.search(v.value) and _said(v.value, numbers) and _vital_said(v, low)]
    allergies = [a for a in records.allergies if a.substance.lower() in low and _ALLERGY_CUE.search(source)]
    kept = Records(medications=meds, vitals=vitals, allergies=allergies)
    dropped = (len(records.medications) - len(meds) + len(records.vitals) - len(vitals)
               + len(records.allergies) - len(allergies))
    return kept, dropped


# --------------------------------------------------------------------------- rendering

_FREQ_WORDS = {"en": 1, "én": 1, "ein": 1, "ei": 1, "to": 2, "tre": 3, "fire": 4, "fem": 5, "seks": 6}
_FREQ = re.compile(
    r"^\s*(\d+|en|én|ein|ei|to|tre|fire|fem|seks)\s+(?:gang|ganger|gong|gonger)\s+"
    r"(?:daglig|dagleg|om dagen|i døgnet|per dag|pr\.? dag|for dagen)\s*$", re.I)
_X_FREQ = re.compile(r"^\s*[xX×]\s*(\d+)\s*$")
_UNIT_CANON = {"milligram": "mg", "mg": "mg", "gram": "g", "g": "g", "mikrogram": "µg", "mcg": "µg", "µg": "µg",
               "ml": "ml", "milliliter": "ml", "ie": "IE", "enheter": "IE", "einingar": "IE", "mmol": "mmol"}
_VITAL_LABEL = {"hoyde": "høyde", "glukose": "glukose", "temp": "temp"}
_VITAL_UNIT = {"SpO2": "%", "vekt": "kg", "hoyde": "cm", "HbA1c": None, "puls": None, "BT": None, "temp": None,
               "RF": None, "GCS": None}
_ACTION_NB = {"new": "Starter {}.", "stop": "Seponerer {}.", "change": "Endrer {}."}
_ACTION_NN = {"new": "Startar {}.", "stop": "Seponerer {}.", "change": "Endrar {}."}


def frequency(text: str | None) -> str | None:
    """"to ganger daglig" → "x 2"; anything else as said (lower case, tidied)."""
    if not text:
        return None
    t = normalize_numbers(text.strip().rstrip("."))
    m = _FREQ.match(t) or _X_FREQ.match(t)
    if m:
        n = m.group(1).lower()
        return f"x {_FREQ_WORDS.get(n, n)}"
    return t.lower()


def _decimal(value: str) -> str:
    return re.sub(r"(\d)\.(\d)", r"\1,\2", value.strip())


def _capital(name: str) -> str:
    name = name.strip()
    return name[:1].upper() + name[1:] if name.islower() else name


def render_medication(m: Medication, lang: str = "nb") -> str:
    """"Metoprolol 50 mg x 2." / "Seponerer Ibux." (stop shows only the substance)."""
    parts = [_capital(m.substance)]
    if m.action != "stop":
        if m.dose:
            unit = _UNIT_CANON.get((m.unit or "").lower().strip(), (m.unit or "").strip())
            dose = _decimal(normalize_numbers(m.dose))
            number = _DIGITS.match(dose.replace(" ", ""))
            if number and dose.replace(" ", "") != number.group(0) and not unit:
                unit = _UNIT_CANON.get(dose[number.end():].strip().lower(), dose[number.end():].strip())
            parts.append(f"{number.group(0) if number else dose} {unit}".strip())
        if m.route:
            parts.append(m.route.strip().lower())
        freq = frequency(m.frequency)
        if freq:
            parts.append(freq)
        if m.duration:
            parts.append(normalize_numbers(m.duration.strip().rstrip(".")).lower())
    body = " ".join(p for p in parts if p)
    pattern = (_ACTION_NN if lang == "nn" else _ACTION_NB).get(m.action)
    return pattern.format(body) if pattern else f"{body}."


def _vital_text(v: Vital) -> str:
    name = v.label.strip() if v.name == "annet" and v.label else _VITAL_LABEL.get(v.name, v.name)
    value = _decimal(v.value)
    unit = (v.unit or "").strip()
    if v.name in _VITAL_UNIT:
        unit = _VITAL_UNIT[v.name] or ""
    if unit and unit.lower() in value.lower():
        unit = ""
    return f"{name} {value}{' ' + unit if unit else ''}"


def render_vitals(vitals: Sequence[Vital]) -> str:
    """"BT 150/90, puls 88, SpO2 96 %, temp 37,2." (one sentence)."""
    if not vitals:
        return ""
    text = ", ".join(_vital_text(v) for v in vitals)
    return text[:1].upper() + text[1:] + "." if not text[:2].isupper() else text + "."


def render_allergy(a: Allergy, lang: str = "nb") -> str:
    reaction = f" ({a.reaction.strip().lower()})" if a.reaction else ""
    return f"Allergi mot {a.substance.strip().lower()}{reaction}."  # the same in nynorsk


def rendered_lines(records: Records, speaker: str | None, ids: Sequence[str], lang: str = "nb",
                   routes: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(section id, sentence) for the records: medicines under *legemidler*, measurements
    under *funn* (the patient's own measurements under *anamnese*, "hjemmemålt"), allergies
    under *legemidler* or *anamnese* — each in the first of those the template has, unless
    the template routes the kind (a section's ``records:``; ``routes``: kind → section id)."""
    routes = routes or {}

    def pick(kind: str, *wanted: str) -> str:
        if routes.get(kind) in ids:
            return routes[kind]
        return next((w for w in wanted if w in ids), ids[0])

    patient = speaker in ("pasient", "pårørende")
    out: list[tuple[str, str]] = []
    for m in records.medications:
        out.append((pick("medications", "legemidler", "plan", "anamnese"), render_medication(m, lang)))
    if records.vitals:
        text = render_vitals(records.vitals)
        if patient:  # what the patient reports having measured: history, not findings
            text = "Oppgir " + (text if text[:2].isupper() else text[:1].lower() + text[1:])
            out.append((pick("", "anamnese", "funn"), text))
        else:
            out.append((pick("measurements", "funn", "anamnese"), text))
    for a in records.allergies:
        out.append((pick("allergies", "legemidler", "anamnese"), render_allergy(a, lang)))
    return out


# verbs of prescribing a record stands for ("Jeg starter ...", "du slutter med ...")
_MEDICATION_VERBS = ("starter startar begynner byner slutter sluttar seponerer øker aukar reduserer trapper ned endrer "
                     "endrar fortsetter held fram bruker brukar tar skriver ut resept resepten målt måler målte "
                     "allergisk allergi tåler")


_VITAL_SPOKEN = {"BT": "blodtrykk blodtrykket", "puls": "pulsen hjertefrekvens", "SpO2": "metning metningen "
                 "oksygenmetning oksygenmetningen", "temp": "temperatur temperaturen feber",
                 "vekt": "veier kilo", "RF": "respirasjonsfrekvens", "Hb": "hemoglobin hemoglobinet",
                 "HbA1c": "langtidsblodsukker langtidsblodsukkeret", "glukose": "blodsukker blodsukkeret"}


def spoken_words(records: Records) -> str:
    """The words a record stands for, as they may have been said (the frequency
    "to ganger daglig" behind "x 2", the verbs of prescribing), so the backstop does not
    repeat a sentence the records already carry."""
    parts: list[str] = [_MEDICATION_VERBS]
    for m in records.medications:
        parts += [m.substance, m.dose or "", m.unit or "", m.route or "", m.frequency or "", m.duration or ""]
    for v in records.vitals:
        parts += [v.name, _VITAL_SPOKEN.get(v.name, ""), v.label or "", v.value, v.unit or ""]
    for a in records.allergies:
        parts += [a.substance, a.reaction or ""]
    return " ".join(p for p in parts if p)


def covered_by(line: str, records: Records) -> bool:
    """A model line that says what a record says (its drug, or its measured numbers),
    which the rendered record replaces."""
    low = line.lower()
    if any(m.substance.lower() in low for m in records.medications):
        return True
    numbers = _numbers_in(line)
    vital_numbers = {n for v in records.vitals for n in _numbers_in(v.value)}
    return bool(numbers) and numbers <= vital_numbers


def unit_text(utterance: Utterance, question: Utterance | None = None) -> str:
    """What a structured call reads: the utterance (a confirmed question's numbers are in
    the question, so a short "Ja." answer reads both)."""
    if question is not None and len(utterance.text.split()) <= 4:
        return f"{question.text} {utterance.text}"
    return utterance.text
