"""Naming the voices: which one is the clinician, the patient, the relative.

With a voice profile the clinician is the voice closest to it (and any other cluster as close:
every cluster above the largest drop in similarity to the profile, so a clinician whose voice
came out as two clusters is still the clinician). Without one, the clinician is
named by behaviour: the voice that asks the questions ("Har du…?", "Hvor lenge…?"), speaks to
the other person ("du", "deg", "dere"), examines, advises and prescribes ("vi tar en
blodprøve", "jeg skriver ut", "milligram", "kontroll"); the others speak of themselves and
their complaints ("jeg har", "vondt", "plager"). Speaking time counts a little too: clinicians
do about 55-60 % of the talking in general practice (Roter & Hall), so a voice's share of the
speech above an even share adds to its score. The words are general Norwegian consultation
language (bokmål and nynorsk), not lines of the shared consultations; their result on the
labelled sets that no rule was written from is in ``benchmarks/README.md``.

Among the others, the voice with the most speech is the patient, unless the template says the
main other voice is a relative (paediatrics: the parent speaks for the child); a second voice
with enough speech is the relative; any further voice stays unnamed (None).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LEGE, PASIENT, PARORENDE = "lege", "pasient", "pårørende"
ROLES = (LEGE, PASIENT, PARORENDE)

SAME_VOICE_SIM = 0.85
SAME_VOICE_GAP = 0.03
SHARE_WEIGHT = 2.0  # per unit of talk share, against the text score's units (per 10 words)
_WORD = re.compile(r"[a-zæøåéü]+")
_SECOND_PERSON = {"du", "deg", "din", "ditt", "dine", "dere", "dykk", "dykkar", "dokker"}
_FIRST_PERSON = {"jeg", "eg", "meg", "min", "mitt", "mine", "mi", "je", "æ", "jæ"}
_QUESTION_START = {"hvor", "hva", "hvordan", "når", "hvem", "hvilke", "hvilken", "hvorfor", "kor", "kva", "korleis",
                   "kven", "kvifor", "har", "er", "kan", "bruker", "brukar", "tar", "merker", "merkar", "føler",
                   "kjenner", "kjenne", "sover", "søv", "gjør", "gjer", "får", "fekk", "fikk", "hadde", "var"}
_CLINICIAN_WORDS = (
    "undersøk", "blodprøv", "blodtrykk", "prøvesvar", "prøvene", "resept", "skriver ut", "skriv ut", "henvis",
    "henvise", "anbefal", "foreslår", "foreslår", "vi tar", "vi skal", "vi starter", "vi startar", "vi øker",
    "vi aukar", "vi avtaler", "vi avtalar", "sykemeld", "sjukemeld", "kontroll", "milligram", "dose", "ganger daglig",
    "gonger dagleg", "legg deg", "pust inn", "kjenner på", "kjenne på", "lytte", "lytter", "se på", "sjå på",
    "diagnose", "behandling", "bivirkning", "biverknad", "tabletter", "tablettar", "ta kontakt", "ring", "om en uke",
    "om ei veke", "om to uker", "om to veker", "bør du", "skal du", "kan du", "vil du",
)
_PATIENT_WORDS = (
    "vondt", "vondt i", "smerte", "plager", "plaga", "svimmel", "kvalm", "sliten", "trøtt", "trøytt", "redd", "bekymret",
    "uroleg", "urolig", "jeg har", "eg har", "jeg er", "eg er", "jeg føler", "eg føler", "jeg merker", "eg merkar",
    "jeg klarer", "eg klarar", "jeg sover", "eg søv", "hjemme", "heime", "kona mi", "mannen min", "jobben",
)


@dataclass(frozen=True, slots=True)
class Naming:
    """Roles of clusters (``roles[c]`` for cluster c, None when unnamed) and how sure."""

    roles: tuple[str | None, ...]
    clinician: int | None
    confidence: float  # 0..1, how clearly the clinician stood out
    method: str  # "profile", "behaviour" or "none"


def clinician_score(texts: Sequence[str]) -> float:
    """How much these lines sound like the clinician (positive) or the patient (negative),
    per 10 words."""
    words_total = 0
    score = 0.0
    for text in texts:
        low = text.lower()
        words = _WORD.findall(low)
        if not words:
            continue
        words_total += len(words)
        questions = float(low.count("?"))
        if words[0] in _QUESTION_START and "?" not in low:
            questions += 0.5  # Whisper does not always write the question mark
        score += 2.0 * questions
        score += 0.7 * sum(w in _SECOND_PERSON for w in words)
        score -= 0.7 * sum(w in _FIRST_PERSON for w in words)
        score += 1.0 * sum(low.count(c) for c in _CLINICIAN_WORDS)
        score -= 1.0 * sum(low.count(c) for c in _PATIENT_WORDS)
    return 10.0 * score / words_total if words_total else 0.0


def name_voices(weights: Sequence[float], *, texts: Sequence[Sequence[str]] = (), profile_sims: Sequence[float] = (),
                main_other: str = PASIENT, profile_floor: float = 0.5, min_relative_s: float = 4.0) -> Naming:
    """Name k voices. ``weights``: speech seconds per voice; ``texts``: each voice's lines;
    ``profile_sims``: each voice's centroid similarity to the clinician's profile (empty: no
    profile). One voice alone is the clinician if it sounds like one (a dictation) or is close to
    the profile, the main other voice if it clearly does not, and unnamed (None) in between."""
    k = len(weights)
    roles: list[str | None] = [None] * k
    if k == 0:
        return Naming((), None, 0.0, "none")
    clinicians: list[int] = []
    if len(profile_sims):
        sims = np.asarray(profile_sims, dtype=float)
        order = [int(i) for i in np.argsort(-sims)]
        if k == 1:
            clinicians = [0] if sims[0] >= profile_floor else []
            confidence = float(np.clip((sims[0] - profile_floor) / 0.2, 0.0, 1.0))
        else:
            # the clinician's voice may have come out as two clusters (a cold, a turn of the
            # head): every cluster above the largest drop in similarity to the profile is theirs
            drops = [sims[order[i]] - sims[order[i + 1]] for i in range(k - 1)]
            cut = int(np.argmax(drops))
            clinicians = [i for i in order[:cut + 1] if sims[i] >= profile_floor]
            # a dictation or a long monologue (no other voice yet): the clinician's one voice can
            # come out as two clusters, both close to the profile (real voices: 0.87-0.95, while
            # another person scores at most 0.83, even in the same room)
            clinicians += [i for i in order[cut + 1:] if clinicians and sims[i] >= SAME_VOICE_SIM
                           and sims[order[0]] - sims[i] <= SAME_VOICE_GAP]
            confidence = float(np.clip(drops[cut] / 0.1, 0.0, 1.0)) if clinicians else 0.0
        method = "profile"
    else:
        scores = np.array([clinician_score(t) for t in texts]) if len(texts) == k else np.zeros(k)
        if k > 1:  # clinicians do more of the talking (about 55-60 % in general practice)
            share = np.asarray(weights, dtype=float) / max(float(np.sum(weights)), 1e-9)
            scores = scores + SHARE_WEIGHT * (share - 1.0 / k)
        order = [int(i) for i in np.argsort(-scores)]
        if k == 1:
            clinicians = [0] if scores[0] > 0.5 else []
            confidence = float(np.clip(abs(scores[0]) / 2.0, 0.0, 1.0))
        else:
            clinicians = [order[0]]
            confidence = float(np.clip((scores[order[0]] - scores[order[1]]) / 2.0, 0.0, 1.0))
        method = "behaviour"
    clinician = clinicians[0] if clinicians else None
    for i in clinicians:
        roles[i] = LEGE
    others = sorted((i for i in range(k) if i not in clinicians), key=lambda i: -weights[i])
    second = PARORENDE if main_other == PASIENT else PASIENT
    unsure = k == 1 and not clinicians and method == "behaviour" and confidence < 0.25
    for rank, i in enumerate(others):
        if unsure:  # one voice so far that sounds like neither: say nothing yet
            break
        if rank == 0:
            roles[i] = main_other
        elif rank == 1 and weights[i] >= min_relative_s:
            roles[i] = second
    return Naming(tuple(roles), clinician, confidence, method)
