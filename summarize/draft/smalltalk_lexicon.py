"""The small-talk word lists: the shipped YAML lexicon plus a superuser's extra files,
indexed for lookup of a word by stem (exact word, prefix, anywhere, phrase)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from asr.errors import ConfigError

LEXICON_RESOURCE = "data/smalltalk_lexicon.yaml"

Kind = Literal["social", "clinical", "neutral"]
_RANK: dict[str, int] = {"clinical": 2, "social": 1, "neutral": 0}

_GREETING_KINDS = {"greeting": "hilsen", "farewell": "avskjed"}

_GLUED_UNIT = re.compile(r"^(\d+(?:[.,]\d+)?)([a-zµ]+)$")
_TOKEN = re.compile(r"[^\W_]+(?:[.,]\d+)?|%")


@dataclass(frozen=True, slots=True)
class Term:
    """One lexicon entry; ``category``/``label`` say which list it came from."""

    kind: Kind
    category: str
    label: str
    stem: str
    hard: bool = False
    weak: bool = False
    greeting: str | None = None  # "hilsen" / "avskjed" for greeting and farewell lists



@dataclass(slots=True)
class Lexicon:
    """The word lists, indexed for stem lookup (exact word, prefix, anywhere, phrase)."""

    exact: dict[str, list[Term]] = field(default_factory=dict)
    prefix: dict[str, list[Term]] = field(default_factory=dict)
    infix: dict[str, list[Term]] = field(default_factory=dict)
    phrases: list[tuple[tuple[str, ...], Term]] = field(default_factory=list)
    units: set[str] = field(default_factory=set)
    short_units: set[str] = field(default_factory=set)
    drug_suffixes: set[str] = field(default_factory=set)
    _drug_re: re.Pattern[str] | None = None
    _max_infix: int = 0

    # ---- building

    @classmethod
    def from_files(cls, paths: Iterable[Path]) -> Lexicon:
        lex = cls()
        for path in paths:
            lex.add_mapping(_read_yaml(path), source=str(path))
        return lex

    @classmethod
    def from_text(cls, text: str, source: str = "<lexicon>") -> Lexicon:
        lex = cls()
        lex.add_mapping(_parse_yaml(text, source), source=source)
        return lex

    def add_mapping(self, data: dict[str, Any], source: str) -> None:
        """Add one lexicon file's lists (the YAML schema is described in the default file)."""
        for kind in ("social", "clinical"):
            for category, spec in (data.get(kind) or {}).items():
                self._add_category(kind, str(category), spec, source)
        neutral = data.get("neutral") or {}
        terms = neutral.get("terms", []) if isinstance(neutral, dict) else neutral
        self._add_terms("neutral", "nøytral", "nøytral", terms, source)
        self.units.update(_strings(data.get("units", []), "units", source))
        self.short_units.update(_strings(data.get("short_units", []), "short_units", source))
        self.drug_suffixes.update(_strings(data.get("drug_suffixes", []), "drug_suffixes", source))
        self._drug_re = None
        self._max_infix = max((len(s) for s in self.infix), default=0)
        self.phrases.sort(key=lambda p: -sum(len(w) for w in p[0]))

    def _add_category(self, kind: Kind, category: str, spec: Any, source: str) -> None:
        if not isinstance(spec, dict) or "terms" not in spec:
            raise ConfigError(
                f"small-talk lexicon {source}: {kind}.{category} needs a 'terms' list"
            )
        greeting = _GREETING_KINDS.get(str(spec.get("kind", "")))
        if spec.get("kind") and greeting is None:
            raise ConfigError(
                f"small-talk lexicon {source}: {kind}.{category}.kind must be greeting or farewell"
            )
        self._add_terms(
            kind,
            category,
            str(spec.get("label", category)),
            spec["terms"],
            source,
            hard=bool(spec.get("hard", False)),
            weak=bool(spec.get("weak", False)),
            greeting=greeting,
        )

    def _add_terms(
        self,
        kind: Kind,
        category: str,
        label: str,
        terms: Any,
        source: str,
        *,
        hard: bool = False,
        weak: bool = False,
        greeting: str | None = None,
    ) -> None:
        for raw in _strings(terms, f"{kind}.{category}.terms", source):
            self._add_term(raw, Term(kind, category, label, "", hard, weak, greeting))

    def _add_term(self, raw: str, template: Term) -> None:
        text = raw.strip().lower()
        mode = "prefix"
        if text.startswith("="):
            mode, text = "exact", text[1:]
        elif text.startswith("*"):
            mode, text = "infix", text[1:]
        words = tuple(_tokens(text))
        if not words:
            return
        term = Term(
            template.kind,
            template.category,
            template.label,
            " ".join(words),
            template.hard,
            template.weak,
            template.greeting,
        )
        if len(words) > 1:
            self.phrases.append((words, term))
            return
        index = {"exact": self.exact, "prefix": self.prefix, "infix": self.infix}[mode]
        index.setdefault(words[0], []).append(term)
        if mode == "prefix" and len(words[0]) >= 5 and words[0].endswith("e"):
            # Norwegian a-forms: "hofte" also matches "hofta", "skade" "skadd".
            index.setdefault(words[0][:-1], []).append(term)

    # ---- lookup

    def word_term(self, word: str) -> Term | None:
        """The best term for one word: the longest matching stem; clinical wins a tie."""
        best: Term | None = None
        best_key = (-1, -1)

        def consider(terms: list[Term] | None, length: int) -> None:
            nonlocal best, best_key
            for t in terms or ():
                key = (length, _RANK[t.kind])
                if key > best_key:
                    best, best_key = t, key

        consider(self.exact.get(word), len(word) + 1)  # a whole-word entry beats any stem
        for k in range(1, len(word) + 1):
            consider(self.prefix.get(word[:k]), k)
        if self.infix:
            for i in range(len(word)):
                for j in range(i + 1, min(len(word), i + self._max_infix) + 1):
                    consider(self.infix.get(word[i:j]), j - i)
        return best

    def is_drug_name(self, word: str) -> bool:
        """A word ending in a drug-class suffix (amlodipin, losartanen, atorvastatin)."""
        if self._drug_re is None:
            alts = "|".join(
                sorted((re.escape(s) for s in self.drug_suffixes), key=len, reverse=True)
            )
            self._drug_re = (
                re.compile(rf"^[^\W\d_]{{3,}}(?:{alts})(?:en|et|er|ene|ets)?$") if alts else None
            )
        return bool(self._drug_re and self._drug_re.match(word))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read small-talk lexicon {path}: {exc.strerror or exc}") from exc
    return _parse_yaml(text, str(path))


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"small-talk lexicon {source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"small-talk lexicon {source} must be a mapping (social, clinical, ...)")
    return data


def _strings(values: Any, where: str, source: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"small-talk lexicon {source}: {where} must be a list of strings")
    return values


def _tokens(text: str) -> list[str]:
    """Lower-cased words; "5mg" is split into "5", "mg" so the unit is seen."""
    out: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        m = _GLUED_UNIT.match(tok)
        out.extend(m.groups() if m else (tok,))
    return out


def default_lexicon_text() -> str:
    """The shipped lexicon (package data, so it works from a wheel too)."""
    return resources.files("summarize").joinpath(LEXICON_RESOURCE).read_text(encoding="utf-8")


@lru_cache(maxsize=8)
def load_lexicon(extra: tuple[Path, ...] = ()) -> Lexicon:
    """The shipped lexicon plus a superuser's extra files (same schema); cached."""
    lex = Lexicon.from_text(default_lexicon_text(), source=LEXICON_RESOURCE)
    for path in extra:
        lex.add_mapping(_read_yaml(path), source=str(path))
    return lex
