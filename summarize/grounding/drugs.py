"""The drug lexicon and drug names in text: ``summarize/data/legemidler.txt`` (generic INN
and Norwegian brand names, ``brand = generic`` lines), Norwegian inflection, compounds with
a dosage-form head ("penicillinkur") and fuzzy matching of ASR misspellings. Used by the
verifier, the structured records and the retraction finder (one place, no import loop)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DRUG_LEXICON_PATH = Path(__file__).resolve().parent.parent / "data" / "legemidler.txt"

# --------------------------------------------------------------------------------------
# Drug lexicon


@lru_cache(maxsize=4)
def _read_lexicon(path: Path) -> tuple[frozenset[str], dict[str, str]]:
    names: set[str] = set()
    aliases: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        name, sep, target = line.partition("=")
        name = " ".join(name.split())
        if not name:
            continue
        names.add(name)
        if sep:
            target = " ".join(target.split())
            if target:
                names.add(target)
                aliases[name] = target
    return frozenset(names), aliases


def load_drug_lexicon(path: Path | None = None) -> set[str]:
    """Drug names (generic INN and Norwegian brand names), lower case, from
    ``summarize/data/legemidler.txt`` (one per line; ``brand = generic`` allowed)."""
    names, _ = _read_lexicon(path or DRUG_LEXICON_PATH)
    return set(names)


def load_drug_aliases(path: Path | None = None) -> dict[str, str]:
    """Brand name -> active substance, from the ``brand = generic`` lines."""
    _, aliases = _read_lexicon(path or DRUG_LEXICON_PATH)
    return dict(aliases)


def canonical_drug(name: str, aliases: dict[str, str] | None = None) -> str:
    """The active substance a lexicon name stands for (a brand's generic, else itself)."""
    name = name.lower()
    table = aliases if aliases is not None else _read_lexicon(DRUG_LEXICON_PATH)[1]
    return table.get(name, name)


# Inflection endings (bokmål and nynorsk) tried when a word is not in the lexicon:
# "amlodipinen", "metforminet", "losartanen", "Paracetens", "insulinsprøytene"...
_SUFFIXES = tuple(
    sorted(
        {"en", "et", "a", "ene", "er", "ane", "ar", "s", "ens", "ets", "n", "t", "e", "ne"},
        key=len,
        reverse=True,
    )
)
# Compound heads after a drug name: "penicillinkur", "metforminbehandlingen"
_FORM_HEADS = (
    "tablett",
    "tabletter",
    "tabletten",
    "tablettene",
    "kur",
    "kuren",
    "behandling",
    "behandlingen",
    "dose",
    "dosen",
    "dosering",
    "doseringen",
    "bruk",
    "bruken",
    "mikstur",
    "plaster",
    "sprøyte",
    "sprøyter",
    "sprøyten",
    "penn",
    "pennen",
    "injeksjon",
    "injeksjonen",
    "kapsel",
    "kapsler",
    "salve",
    "krem",
    "dråper",
    "spray",
    "inhalator",
    "resept",
    "resepten",
)
# Ordinary words an edit distance away from a drug name: never fuzzy-matched.
_FUZZY_STOP = frozenset(
    {
        "lyrikk",
        "lyrisk",
        "metoden",
        "metode",
        "morgen",
        "morfar",
        "kalsium",
        "kalium",
        "kaliumet",
        "vitamin",
        "vitaminer",
        "kreatinin",
        "protein",
        "hormon",
        "hormonet",
        "medisin",
        "medisinen",
        "medisiner",
        "serotonin",
        "dopamin",
        "histamin",
        "adrenalinet",
        "fortsatt",
        "forteller",
        "kontroll",
        "kontrollen",
        "tabletten",
        "tabletter",
        "sertifikat",
        "sentralt",
        "sentralen",
        "mariann",
        "marianne",
        "kristin",
        "kristine",
        "martin",
        "martine",
        "nikolai",
        "kolesterol",
        "kolesterolet",
        "penicillinet",
        "antibiotika",
        "antibiotikum",
        "antidepressiva",
        "antidepressivum",
    }
)


def _phon(w: str) -> str:
    """Rough spelling normalisation for fuzzy matching (soft/hard c, ph/f, x/ks, doubles)."""
    w = w.lower().replace("-", "").replace(" ", "")
    for a, b in (("ph", "f"), ("th", "t"), ("ch", "k"), ("qu", "kv"), ("ck", "k")):
        w = w.replace(a, b)
    w = re.sub(r"c(?=[eiy])", "s", w)
    w = w.replace("c", "k").replace("x", "ks").replace("z", "s").replace("w", "v").replace("é", "e")
    return re.sub(r"(.)\1+", r"\1", w)


_SOUND_CLASS = {
    **dict.fromkeys("aeiouyæøå", "V"),
    **dict.fromkeys("sz", "S"),
    **dict.fromkeys("kgq", "K"),
    **dict.fromkeys("td", "T"),
    **dict.fromkeys("pb", "P"),
    **dict.fromkeys("fvw", "F"),
    **dict.fromkeys("mn", "N"),
}


def _sub_cost(a: str, b: str) -> int:
    if a == b:
        return 0
    ca, cb = _SOUND_CLASS.get(a), _SOUND_CLASS.get(b)
    return 1 if ca is not None and ca == cb else 2


def _indel_cost(c: str) -> int:
    return 1 if _SOUND_CLASS.get(c) == "V" or c == "h" else 2


def _edit_distance(a: str, b: str, limit: int) -> int:
    """A phonetically weighted optimal-string-alignment distance: a vowel for a vowel, a
    similar consonant (t/d, k/g, s/z, m/n, p/b, f/v), a dropped or extra vowel and a
    swap of two letters cost 1; any other consonant change costs 2. Gives up (returns
    limit+1) beyond ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = [0]
    for ch in b:
        prev.append(prev[-1] + _indel_cost(ch))
    for i in range(1, len(a) + 1):
        cur = [prev[0] + _indel_cost(a[i - 1])] + [0] * len(b)
        best = cur[0]
        for j in range(1, len(b) + 1):
            v = min(
                prev[j] + _indel_cost(a[i - 1]),
                cur[j - 1] + _indel_cost(b[j - 1]),
                prev[j - 1] + _sub_cost(a[i - 1], b[j - 1]),
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


@dataclass(frozen=True, slots=True)
class DrugMention:
    """One drug name found in text: the lexicon ``name``, the ``text`` as written, its
    span, and whether it was only a fuzzy (edit-distance) match."""

    name: str
    text: str
    start: int
    end: int
    fuzzy: bool = False


class _DrugIndex:
    def __init__(self, lexicon: frozenset[str]) -> None:
        self.single = {n for n in lexicon if " " not in n}
        multi = [tuple(n.split()) for n in lexicon if " " in n]
        self.multi = sorted(multi, key=len, reverse=True)
        self.by_prefix: dict[str, list[str]] = {}
        self.phon: dict[str, list[tuple[str, str]]] = {}
        for n in self.single:
            if len(n) >= 5:
                self.by_prefix.setdefault(n[:5], []).append(n)
            p = _phon(n)
            if p:
                self.phon.setdefault(p[0], []).append((p, n))

    def exact(self, w: str) -> str | None:
        if w in self.single:
            return w
        for suf in _SUFFIXES:
            if w.endswith(suf) and len(w) - len(suf) >= 4 and w[: -len(suf)] in self.single:
                return w[: -len(suf)]
        if "-" in w:
            head = w.split("-", 1)[0]
            if head in self.single and len(head) >= 4:
                return head
        for n in self.by_prefix.get(w[:5], ()):
            if w.startswith(n) and w[len(n) :] in _FORM_HEADS:
                return n
        return None

    def fuzzy(self, w: str, memo: dict[str, str | None] | None = None) -> str | None:
        if len(w) < 6 or w in _FUZZY_STOP or not w.isalpha():
            return None
        if memo is not None:
            if w not in memo:
                memo[w] = self.fuzzy(w)
            return memo[w]
        forms = [w] + [w[: -len(s)] for s in ("en", "et", "ene", "a") if w.endswith(s)]
        best: tuple[int, str] | None = None
        for form in forms:
            if len(form) < 6:
                continue
            p = _phon(form)
            for cand, name in self.phon.get(p[:1], ()):
                if len(name) < 6:
                    continue
                limit = 2 if max(len(p), len(cand)) >= 9 else 1
                if abs(len(p) - len(cand)) > limit:
                    continue
                d = _edit_distance(p, cand, limit)
                if d <= limit and (
                    best is None or d < best[0] or (d == best[0] and name < best[1])
                ):
                    best = (d, name)
        return best[1] if best else None

    def match(self, w: str, fuzzy: bool, memo: dict[str, str | None] | None = None) -> tuple[str, bool] | None:
        name = self.exact(w)
        if name is not None:
            return name, False
        if fuzzy:
            name = self.fuzzy(w, memo)
            if name is not None:
                return name, True
        return None


@lru_cache(maxsize=8)
def _drug_index(lexicon: frozenset[str]) -> _DrugIndex:
    return _DrugIndex(lexicon)


_WORD_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


def drug_mentions(
    text: str, lexicon: Iterable[str] | None = None, *, fuzzy: bool = True,
    memo: dict[str, str | None] | None = None,
) -> list[DrugMention]:
    """Every drug name in ``text`` with its span (see :func:`find_drugs`). ``memo``: the
    fuzzy matches of words already looked up (the verifier keeps one per transcript: a
    long transcript repeats its words, and the draft repeats the transcript's)."""
    lex = frozenset(lexicon) if lexicon is not None else _read_lexicon(DRUG_LEXICON_PATH)[0]
    index = _drug_index(lex)
    toks = [(m.group(0).lower(), m.start(), m.end()) for m in _WORD_RE.finditer(text)]
    out: list[DrugMention] = []
    i = 0
    while i < len(toks):
        hit = None
        for words in index.multi:
            k = len(words)
            if i + k > len(toks):
                continue
            got = [t[0] for t in toks[i : i + k]]
            if got[:-1] == list(words[:-1]) and (
                got[-1] == words[-1]
                or index.exact(got[-1]) == words[-1]
                or any(got[-1] == words[-1] + s for s in _SUFFIXES)
            ):
                s, e = toks[i][1], toks[i + k - 1][2]
                hit = (DrugMention(" ".join(words), text[s:e], s, e), k)
                break
        if hit is None:
            w, s, e = toks[i]
            m = index.match(w, fuzzy, memo)
            if m is not None:
                hit = (DrugMention(m[0], text[s:e], s, e, m[1]), 1)
            elif fuzzy and i + 1 < len(toks) and text[e : toks[i + 1][1]].isspace():
                # an ASR split: "amlo dipin"
                w2, _, e2 = toks[i + 1]
                joined = w + w2
                if len(w) >= 3 and len(w2) >= 3 and index.exact(joined) is not None:
                    hit = (DrugMention(index.exact(joined) or joined, text[s:e2], s, e2, True), 2)
        if hit is not None:
            out.append(hit[0])
            i += hit[1]
        else:
            i += 1
    return out


def find_drugs(text: str, lexicon: Iterable[str] | None = None, *, fuzzy: bool = True) -> list[str]:
    """Lexicon names of the drugs mentioned in ``text``, in order of first mention.

    Handles case, Norwegian inflection ("amlodipinen", "metforminet", "losartanen"),
    compounds with a dosage-form head ("penicillinkur"), multi-word names
    ("insulin glargin") and, for words of 6+ letters, ASR misspellings within a small
    edit distance after spelling normalisation ("amlodipien", "sertralinn", "Cipraleks").
    """
    seen: dict[str, None] = {}
    for m in drug_mentions(text, lexicon, fuzzy=fuzzy):
        seen.setdefault(m.name, None)
    return list(seen)
