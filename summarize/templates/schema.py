"""What a template's front matter may declare: the metadata schema (pydantic), the
languages with the program's fixed wording, and :class:`TemplateProblem` (one thing wrong
with a template file)."""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

STANDARD_SECTIONS = ("anamnese", "vurdering", "plan")

# Fixed wording, owned by the program (not by templates): the AI transparency line
# (EU AI Act art. 50), the marker of an extractive draft, the text of an empty required section.
LANGUAGE_TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "disclosure": (
            "UTKAST laget med hjelp av KI-programvare (tale-til-tekst og tekstutkast), ikke godkjent: "
            "behandlende lege kontrollerer, retter og godkjenner notatet."
        ),
        "disclosure_approved": (
            "Notatet er utarbeidet med hjelp av KI-programvare (tale-til-tekst og tekstutkast) "
            "og er gjennomgått og godkjent av {by}."
        ),
        "approver": "behandlende lege",
        "extractive_notice": (
            "OBS: UTTREKK FRA TRANSKRIPSJONEN – teksten er ikke bearbeidet av språkmodell "
            "og må kontrolleres nøye."
        ),
        "not_mentioned": "Ikke omtalt.",
    },
    "nn": {
        "disclosure": (
            "UTKAST laga med hjelp av KI-programvare (tale-til-tekst og tekstutkast), ikkje godkjent: "
            "behandlande lege kontrollerer, rettar og godkjenner notatet."
        ),
        "disclosure_approved": (
            "Notatet er utarbeidd med hjelp av KI-programvare (tale-til-tekst og tekstutkast) "
            "og er gjennomgått og godkjent av {by}."
        ),
        "approver": "behandlande lege",
        "extractive_notice": (
            "OBS: UTTREKK FRÅ TRANSKRIPSJONEN – teksten er ikkje bearbeidd av språkmodell "
            "og må kontrollerast nøye."
        ),
        "not_mentioned": "Ikkje omtalt.",
    },
}

_TEMPLATE_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_SECTION_ID = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
# The drafter finds section headings in the model's output with letters, spaces, '/', '-'.
_SECTION_TITLE = re.compile(r"^[A-Za-zÆØÅæøå][A-Za-zÆØÅæøå /\-]*$")
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)


# -- problems ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """One thing wrong with a template file; ``str()`` is ``file:line: message``."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


# -- metadata schema --------------------------------------------------------------------
class SectionMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str
    title: str
    instruction: str = Field(min_length=1, max_length=600)
    required: bool = False
    style: Literal["paragraph", "lines"] = "paragraph"
    vocabulary: list[str] = Field(default_factory=list)
    # the section's output, shown to the model: one or two sentences as they should read
    example: str = Field(default="", max_length=300)
    # structured records rendered here (one line each): medications, measurements, allergies
    records: list[Literal["medications", "measurements", "allergies"]] = Field(default_factory=list)

    @field_validator("example")
    @classmethod
    def _example(cls, v: str) -> str:
        v = " ".join(v.split())
        bad = _SPOKEN.search(v)
        if bad or v.rstrip().endswith("?"):
            what = f"{bad.group(0)!r}" if bad else "a question"
            raise ValueError(
                f"example has {what}: write it as the note should read (journal style, about the "
                "patient: 'Har hatt hoste i 1 uke.', 'Henvist til MR.'), not as spoken"
            )
        return v

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _SECTION_ID.match(v):
            raise ValueError(
                f"section id {v!r} must be a slug: lower-case letters a-z, digits and '_' "
                "(e.g. kognitiv_testing)"
            )
        return v

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        if not _SECTION_TITLE.match(v):
            raise ValueError(
                f"section title {v!r} may only contain letters, spaces, '/' and '-' "
                "(the drafter finds the headings in the language model's output)"
            )
        return v

    @field_validator("vocabulary")
    @classmethod
    def _vocab(cls, v: list[str]) -> list[str]:
        return _clean_words(v)


_SPOKEN = re.compile(r"\b(?:jeg|eg|meg|du|deg|vi|oss|min|mitt|mine|din|ditt|dine|vår|vårt|våre)\b", re.I)


class ChangeMeta(BaseModel):
    """One entry of the optional change log (``changes:``), appended by the template editor."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: str
    date: str
    note: str = Field(min_length=1, max_length=500)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        if not isinstance(v, str) or not _SEMVER.match(v.strip()):
            raise ValueError(f'version {v!r} must be a quoted semantic version like "1.0.1"')
        return v.strip()

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> str:
        if isinstance(v, _dt.date) and not isinstance(v, _dt.datetime):
            return v.isoformat()
        try:
            return _dt.date.fromisoformat(str(v).strip()).isoformat()
        except ValueError:
            raise ValueError(f"date {v!r} must be a date like 2026-11-24") from None


class TemplateMeta(BaseModel):
    """The front matter of a template."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str
    version: str
    title: str = Field(min_length=1, max_length=120)
    language: str
    description: str = ""
    vocabulary: list[str] = Field(default_factory=list)
    # the role of the main voice that is not the clinician's (paediatrics: the parent)
    main_speaker: Literal["pasient", "pårørende"] = "pasient"
    sections: list[SectionMeta] = Field(min_length=1)
    changes: list[ChangeMeta] = Field(default_factory=list)  # change log, oldest first

    @model_validator(mode="after")
    def _records_once(self) -> TemplateMeta:
        seen: dict[str, str] = {}
        for sec in self.sections:
            for kind in sec.records:
                if kind in seen:
                    raise ValueError(f"records {kind!r} are declared in two sections ({seen[kind]} and {sec.id}); "
                                     "each kind of record goes to one section")
                seen[kind] = sec.id
        return self

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _TEMPLATE_ID.match(v):
            raise ValueError(
                f"template id {v!r} must be a slug: lower-case letters a-z, digits and '-'"
            )
        return v

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        if not isinstance(v, str) or not _SEMVER.match(v.strip()):
            raise ValueError(
                f'version {v!r} must be a quoted semantic version like "1.0.0" (MAJOR.MINOR.PATCH)'
            )
        return v.strip()

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, v: Any) -> str:
        if v not in LANGUAGE_TEXT:
            raise ValueError(f"language {v!r} must be 'nb' (bokmål) or 'nn' (nynorsk)")
        return str(v)

    @field_validator("vocabulary")
    @classmethod
    def _vocab(cls, v: list[str]) -> list[str]:
        return _clean_words(v)


def _clean_words(words: Iterable[str]) -> list[str]:
    out: list[str] = []
    for w in words:
        w = " ".join(str(w).split())
        if w and w not in out:
            out.append(w)
    return out
