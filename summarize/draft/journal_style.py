"""Spoken → written: one transcript or model sentence in Norwegian journal style.

The drafter keeps a sentence of the transcript when the model left its content out (the
backstop), and the small model itself sometimes writes "du" or "vi". A journal note is
written about the patient, not to them, and without the speaker's fillers:

    "Ja, altså, jeg har hatt vondt i kneet mitt i tre uker."  (patient)
        → "Har hatt vondt i kneet i 3 uker."
    "Da tar vi blodprøver, og du må ta med deg urinprøve."    (clinician)
        → "Tar blodprøver, og pasienten må ta med seg urinprøve."
    "Mora mi har begynt å glemme ting."                        (relative)
        → "Pasienten har begynt å glemme ting."

Deterministic rules, written for Norwegian in general (the word classes below), not for
any consultation: fillers and opening discourse words go; a question or an instruction
about the examination gives no sentence (:func:`journal_sentence` returns ``None``);
the first person of the patient and the second person of the clinician become the
dropped subject of journal style ("Har hatt vondt ...") at the start of a sentence and
"pasienten" elsewhere; possessives after a noun are dropped ("kneet mitt" → "kneet"),
before a noun they become "pasientens"; the clinician's "jeg"/"vi" is the dropped
subject of an action ("Henviser til MR"); "vi ses om 3 uker" is "Kontroll om 3 uker";
a simile the patient uses for a symptom stays in their words («som en kniv»).
"""

from __future__ import annotations

import re

_PRONOUN = r"(?:jeg|eg|vi|me|du|dere|de)"
# fillers always; "da/så/nå/men/og" only before a comma or a pronoun ("Da tar vi", "Men jeg"),
# not where they carry meaning ("Så langt ingen bivirkninger", "Nå smertefri")
_OPENERS = re.compile(
    r"^(?:(?:(?:ja|jo|nei|altså|vel|ok|okei|okay|eh|ehm|hm+|øh|ja vel|javel|greit|fint|bra|supert|flott|"
    r"sånn|nettopp|akkurat|skjønner|forstår|og|men|og så|men så)\b|(?:da|så|nå)\b(?=\s*,|\s+" + _PRONOUN
    + r"\b|\s+\S+\s+" + _PRONOUN + r"\b))[\s,.!…–-]*)+", re.I)
_TRAILING = re.compile(r"(?:,\s*|\s+)(?:da|altså|vel|liksom|jo|sant|ikke sant)\s*(?=[.!…]*$)", re.I)
_ADVICE = re.compile(r"^(?:prøv|forsøk) (?:å|og) ", re.I)
_FILLERS = re.compile(r"(?:,\s*)?\b(?:eh|ehm|øh|hm+|he(?:he)+|ha(?:ha)+|uff|liksom|på en måte|"
                      r"for å si det sånn|du vet|vet du|skjønner du|ikke sant)\b(?:\s*\.{3})?|\baltså\b,?\s*", re.I)
_QUESTION = re.compile(r"\?\s*$")
_ADDRESS = re.compile(r"^(?:kan du|vil du|skal vi se|la meg|la oss|nå skal jeg|nå skal eg|da skal jeg|"
                      r"legg deg|sett deg|pust|slapp av|bøy|strekk|løft|klem|se på meg|følg fingeren)\b", re.I)
_SEE_YOU = re.compile(r"^(?:vi|me) (?:ses|sjåast|sees|snakkes|høres)(?: (?:igjen|da|vel))?\b", re.I)
_MUST = re.compile(r"^(?:du|dere) (må|skal|bør|burde)\b", re.I)
_REMEMBER = re.compile(r"^(?:husk|hugs) (?:å|og)\b", re.I)
_THINK = re.compile(r"^(?:jeg|eg|vi|me) (?:tror|trur|tenker|mener|meiner)(?: at)?(?: (?:det|dette) (?:er|dreier "
                    r"seg om|dreiar seg om|kan være|kan vere|ser ut som|ser ut til å være))?\s+", re.I)
_SIMILE = re.compile(r"\bsom (?:en|ei|et|ein|eit|om)\b(?:(?!\b(?:når|hvis|viss|og|men|fordi|etter|da)\b)[^,.;!?]){2,40}",
                     re.I)
_KIN = (r"mora|moren|mor|faren|far|mannen|kona|konen|kone|sønnen|dattera|datteren|broren|bror|søstera|søsteren|"
        r"søster|samboeren|samboer|svigermora|svigerfaren|bestemora|bestefaren|mormor|morfar|farmor|farfar|"
        r"kjæresten|partneren")
_KIN_OF_SPEAKER = re.compile(rf"\b(?:(?:min|mi|mitt|mine) (?:{_KIN})|(?:{_KIN}) (?:min|mi|mitt|mine))\b", re.I)
# a test score: "22 av 30 poeng" → "22/30" ("2 av 3 barn" stays)
_SCORE = re.compile(r"\b(\d+) av (\d+)(?: mulige)? poeng\b|\b((?:mmse|moca|gcs|vas|nrs):? )(\d+) av (\d+)\b", re.I)
_FIRST = {"jeg", "eg"}
_SECOND = {"du"}
_OBJ_FIRST = {"meg"}
_OBJ_SECOND = {"deg", "dykk"}
_POSS_FIRST = {"min", "mi", "mitt", "mine"}
_POSS_SECOND = {"din", "di", "ditt", "dine"}
_WE = {"vi", "me"}
_US = {"oss", "vår", "vårt", "våre"}
_DEFINITE = re.compile(r"\w{2,}(?:et|en|a|ene|ane|inga|ingen|na|ne)$", re.I)


def _clean(sentence: str) -> str:
    out = _TRAILING.sub("", _FILLERS.sub("", sentence).strip())
    out = _OPENERS.sub("", re.sub(r"^[\s,.…]+", "", out.strip()))
    out = re.sub(r"\s+([,.!?…])", r"\1", re.sub(r"\s{2,}", " ", out)).strip(" ,–-")
    return re.sub(r"^[,.…]\s*", "", out)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def is_address(sentence: str) -> bool:
    """The clinician asking, instructing for the examination or narrating it: no journal
    content of its own."""
    s = _clean(sentence)
    return bool(_QUESTION.search(s) or _ADDRESS.match(s))


def journal_sentence(sentence: str, speaker: str | None) -> str | None:
    """``sentence`` (said by ``speaker``: "lege", "pasient", "pårørende" or None) in journal
    style, or ``None`` when it has no place in a note (a question, an instruction for the
    examination, nothing left after the fillers)."""
    s = _clean(" ".join(sentence.split()))
    if not s or _QUESTION.search(s) or _ADDRESS.match(s):
        return None
    if _SEE_YOU.match(s):
        s = _SEE_YOU.sub("Kontroll", s)
    told = bool(_REMEMBER.match(s) or (speaker != "pasient" and _MUST.match(s)))
    s = _ADVICE.sub("Anbefalt å ", _REMEMBER.sub("Skal", s))
    s = _MUST.sub(lambda m: m.group(1), s) if speaker != "pasient" else s
    s = re.sub(r"\b(må|skal|bør) (?:huske|hugse) (?:å|og) ", r"\1 ", s, flags=re.I)
    if speaker == "pårørende":  # "mora mi", "mamma": the relative names the patient
        s = _KIN_OF_SPEAKER.sub("pasienten", s)
        s = re.sub(r"\b(?:mamma|pappa)\b", "pasienten", s, flags=re.I)
    s = _SCORE.sub(lambda m: f"{m.group(1)}/{m.group(2)}" if m.group(1) else f"{m.group(3)}{m.group(4)}/{m.group(5)}", s)
    think = _THINK.match(s)
    if think and speaker != "pasient":
        s = "Trolig " + s[think.end():]
    if speaker == "lege":  # the clinic: "her hos oss" → "her", "ring oss" → "ring"
        s = re.sub(r"\b(?:her )?hos oss\b", "her", s, flags=re.I)
        s = re.sub(r"\btil oss\b", "hit", s, flags=re.I)
        s = re.sub(r"\b(ring|ringe|kontakt|kontakte|kontakter|ringer) oss\b", r"\1 behandler", s, flags=re.I)
    s = _persons(s, speaker, subject=told)
    s = _quote_similes(s) if speaker in ("pasient", "pårørende") else s
    s = re.sub(r"\s+([,.!?…])", r"\1", re.sub(r"\s{2,}", " ", s)).strip(" ,")
    if not re.search(r"[\wæøå]", s):
        return None
    if not s.endswith((".", "!", "»", ")")):
        s = s.rstrip("…") + "."
    return _cap(s)


def _persons(s: str, speaker: str | None, subject: bool = False) -> str:
    """Pronouns by who speaks: the patient's "jeg" and the clinician's "du" are the
    patient; the clinician's "jeg"/"vi" the clinician (an action: the subject is dropped).
    ``subject``: the patient is already the subject ("Skal ta med deg" → "med seg")."""
    patient = speaker in ("pasient", None)
    me = {"lege": _SECOND, "pasient": _FIRST, None: _FIRST}.get(speaker, set())  # the patient as subject
    me_obj = {"lege": _OBJ_SECOND, "pasient": _OBJ_FIRST, None: _OBJ_FIRST}.get(speaker, set())
    me_poss = {"lege": _POSS_SECOND, "pasient": _POSS_FIRST, None: _POSS_FIRST}.get(speaker, set())
    clinician = {"lege": _FIRST | _WE, None: _WE, "pårørende": set(), "pasient": set()}.get(speaker, set())
    addressee = {"pasient": _SECOND | _OBJ_SECOND, "pårørende": _SECOND | _OBJ_SECOND}.get(speaker or "", set())
    state = {"patient_subject": subject, "words": 0}
    if speaker in ("lege", None):
        s = _passive(s)

    def word(m: re.Match[str]) -> str:
        tok, low = m.group(0), m.group(0).lower()
        before = s[:m.start()].rstrip()
        n = state["words"]
        state["words"] += 1
        clause_start = n == 0 or before.endswith((",", ";")) or before.lower().endswith(" og")
        if (clause_start and n > 0) or low in _OTHER_SUBJECTS:
            state["patient_subject"] = False
        # "Nå har jeg" after the opener went: "Har jeg" → "Har" (not "Hvis du": a subjunction)
        inverted = n == 1 and not re.match(rf"\W*(?:{_SUBJUNCTIONS})\b", s, re.I)
        if speaker == "pårørende" and low in _FIRST:
            return "Pårørende" if n == 0 else "pårørende"
        if speaker == "pårørende" and low in _OBJ_FIRST | _POSS_FIRST:
            return "pårørende" if low in _OBJ_FIRST else ""
        if speaker == "pårørende" and low in _WE | _US:  # the family
            return "pårørende" if low in _WE | {"oss"} else ""
        if low in me:
            state["patient_subject"] = True
            if n == 0 or inverted or (clause_start and patient):
                return ""  # "Jeg har vondt" → "Har vondt"
            return "pasienten"
        if low in clinician:
            state["patient_subject"] = False
            if clause_start or inverted or n <= 2:
                return ""  # "Vi tar blodprøver" → "Tar blodprøver"
            return "legen" if speaker == "pasient" else "man"  # "før vi har sett MR" → "før man har sett MR"
        if low in me_obj:
            return "seg" if state["patient_subject"] else "pasienten"
        if low in me_poss:
            prev = re.findall(r"[\wæøå]+$", before)
            if prev and _DEFINITE.match(prev[0]):
                return ""  # "kneet mitt" → "kneet"
            return "pasientens"
        if low in addressee:
            return "legen"
        if low in _US and speaker == "lege":
            return ""
        return tok

    return re.sub(r"(?<![\w/.,])[A-Za-zæøåÆØÅé]+(?![\w/])", word, s)


_SUBJUNCTIONS = "hvis|viss|når|om|at|som|fordi|dersom|før|etter|mens|selv om|siden|sidan|til|enn|der|hvor|kor"
_OTHER_SUBJECTS = frozenset("han hun ho de dei det den legen mannen kona mora faren".split())
_AUX = frozenset("har er kan skal vil må får gjør blir var hadde fikk bør".split())
_NOT_VERBS = frozenset("før etter over under enn når hvor kor der her for eller per mer hver nær ennå iår".split())
_INVERTED = re.compile(r"(?<=\w )([a-zæøå]{2,}r) (?:jeg|eg|vi|me)\b(?= [\wæøå])")


def _passive(s: str) -> str:
    """The clinician's action after an adverbial: "I dag måler jeg blodtrykket" → "I dag
    måles blodtrykket" (s-passive; an auxiliary keeps its form: "Nå har vi" → "Nå har")."""
    def sub(m: re.Match[str]) -> str:
        verb = m.group(1)
        if verb.lower() in _NOT_VERBS:
            return m.group(0)  # "før vi har sett": not a verb
        return verb if verb.lower() in _AUX else verb[:-1] + "s"

    return _INVERTED.sub(sub, s)


def _quote_similes(s: str) -> str:
    """«som en kniv»: the patient's own image of a symptom stays in their words."""
    def quote(m: re.Match[str]) -> str:
        said = m.group(0)
        return f"«{said.strip()}»" + (" " if said.endswith(" ") else "")

    return _SIMILE.sub(quote, s) if "«" not in s else s
