"""Note templates per specialty: Jinja2 files with YAML front matter, validated and sandboxed.

A template is one file ``<id>.md.j2`` in a template directory::

    ---
    id: allmennmedisin            # = the file name without .md.j2
    version: "1.0.0"              # semver, quoted
    title: Allmennmedisin – konsultasjon
    language: nb                  # nb (bokmål) | nn (nynorsk)
    description: ...
    vocabulary: [amlodipin, ...]  # prompt words for ASR (optional)
    sections:                     # in note order
      - id: anamnese
        title: Anamnese
        instruction: Kun symptomer og sykehistorie pasienten forteller. ...
        required: true
    changes:                      # change log (optional; the template editor appends)
      - {version: "1.0.1", date: "2026-11-24", note: Rettet skrivefeil}
    ---
    {% extends "_base.md.j2" %}

The metadata is checked against :class:`TemplateMeta` (pydantic); the body is rendered in
a :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` with ``StrictUndefined``, autoescape
off (plain text), loading only from the template directories. Files whose name starts with
``_`` (``_base.md.j2``, ``_macros.md.j2``) are shared layout pieces, not templates.

Every template must declare the standard sections ``anamnese``, ``vurdering`` and ``plan``
as ``required: true``. A required section is always printed (``Ikke omtalt.`` when the
draft has nothing for it); an optional one only when it has text. Validation renders a
sample draft and checks that every declared section shows up, in the declared order, and
that the AI transparency line (``meta.disclosure``) and the extractive marker are printed.

Nothing here logs or stores patient text; errors name files, lines and template syntax only.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import threading
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from asr.errors import printable
from summarize.errors import TemplateError
from summarize.types import NoteDraft, NoteSection, Sentence

logger = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent.parent.parent / "templates_notes"
ENV_VAR = "SCRIBE_TEMPLATE_DIR"
SUFFIX = ".md.j2"
STANDARD_SECTIONS = ("anamnese", "vurdering", "plan")
MAX_OUTPUT_CHARS = 200_000
RENDER_TIME_LIMIT_S = 5.0  # a note renders in milliseconds; validation renders a few samples
_MAX_REPEAT = 100_000  # longest string/list a template may build with '*'
_warned: set[Path] = set()

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


# -- the template object ----------------------------------------------------------------
@dataclass(frozen=True)
class TemplateSection:
    """One section of a note template (in note order)."""

    id: str
    title: str
    instruction: str
    required: bool = False
    style: str = "paragraph"  # "paragraph": one paragraph; "lines": one sentence per line
    vocabulary: tuple[str, ...] = ()
    line: int = field(default=0, compare=False, repr=False)  # where it is declared
    example: str = ""  # how the section should read (shown to the model)
    records: tuple[str, ...] = ()  # structured records rendered here: medications, measurements, allergies


@dataclass(frozen=True, eq=False)
class NoteTemplate:
    """A loaded, validated note template. ``render(draft)`` gives the final note text."""

    id: str
    version: str
    title: str
    language: str
    description: str
    sections: tuple[TemplateSection, ...]
    vocabulary: tuple[str, ...]
    path: Path
    search_path: tuple[Path, ...] = field(default=(), repr=False)
    # (file name, text) of files not (yet) on disk that hide files of that name in the
    # search path, e.g. the unsaved text in the template editor (see check_template_text)
    sources: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    # -- convenience ------------------------------------------------------------------
    @property
    def section_ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.sections)

    @property
    def required_sections(self) -> tuple[TemplateSection, ...]:
        return tuple(s for s in self.sections if s.required)

    def section(self, section_id: str) -> TemplateSection | None:
        return next((s for s in self.sections if s.id == section_id), None)

    def empty_draft(self) -> NoteDraft:
        """A draft with this template's sections, all empty."""
        return NoteDraft(
            template_id=self.id,
            template_version=self.version,
            sections=[NoteSection(s.id, s.title, []) for s in self.sections],
            language=self.language,
        )

    def sample_draft(self, *, extractive: bool = False, empty: bool = False) -> NoteDraft:
        """A placeholder draft: every section holds ``(Eksempeltekst: <title>)``."""
        draft = self.empty_draft()
        draft.extractive = extractive
        if not empty:
            for sec, spec in zip(draft.sections, self.sections, strict=True):
                n = 2 if spec.style == "lines" else 1
                sec.sentences = [Sentence(_sample_text(spec, i)) for i in range(n)]
        return draft

    # -- rendering --------------------------------------------------------------------
    @cached_property
    def _env(self) -> jinja2.Environment:
        return _environment(self.search_path or (self.path.parent,), dict(self.sources))

    def context(self, draft: NoteDraft, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """The variables a template body sees (see templates_notes/README.md)."""
        by_id = {s.id: s for s in draft.sections}
        sections = {s.id: by_id.get(s.id) or NoteSection(s.id, s.title, []) for s in self.sections}
        extra = [s for s in draft.sections if s.id not in sections and s.sentences]
        m: dict[str, Any] = {
            "date": _dt.date.today().strftime("%d.%m.%Y"),
            "generated_by": _generated_by(),
            "llm": draft.llm,
            "template_id": self.id,
            "template_version": self.version,
        }
        m.update(meta or {})
        m["extractive"] = bool(draft.extractive or m.get("extractive"))
        m["language"] = self.language
        approved, by = bool(m.get("approved")), str(m.get("approved_by") or "").strip()
        text = LANGUAGE_TEXT[self.language]
        m.update({k: v for k, v in text.items() if k not in ("disclosure_approved", "approver")})  # fixed wording
        # a draft says it is a draft; only the note the clinician approved says it was approved
        m["approved"] = approved
        if approved:
            m["disclosure"] = text["disclosure_approved"].format(by=by or text["approver"])
        info = {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "language": self.language,
            "description": self.description,
            "sections": list(self.sections),
            "by_id": {s.id: s for s in self.sections},
            "vocabulary": list(self.vocabulary),
        }
        return {
            "note": draft,
            "sections": sections,
            "extra_sections": extra,
            "template": info,
            "meta": m,
        }

    def render(self, draft: NoteDraft, meta: dict[str, Any] | None = None) -> str:
        """The final note text of ``draft``. Raises only :class:`TemplateError`."""
        if getattr(draft, "template_id", self.id) != self.id:
            logger.warning(
                "rendering a draft of template %r with template %r", draft.template_id, self.id
            )
        try:
            context = self.context(draft, meta)
        except Exception as exc:  # not a NoteDraft, meta not a dict, ...
            raise TemplateError(
                f"note template {self.id!r} cannot render this draft ({type(exc).__name__})"
            ) from None
        try:
            return self._render(context, detail=False)
        except _RenderFailure as exc:
            raise TemplateError(
                f"note template {self.id!r} cannot be rendered: {exc.problem}"
            ) from None

    def render_sample(self, *, extractive: bool = False) -> str:
        """The note rendered from :meth:`sample_draft` (a preview; used by validation)."""
        return self.render(self.sample_draft(extractive=extractive), {"date": "01.01.2000"})

    def _render(self, context: dict[str, Any], detail: bool = True) -> str:
        """``detail=False`` (real drafts): no exception text that could quote the note.

        Bounded: the output is counted as it is produced (over :data:`MAX_OUTPUT_CHARS` it
        stops, before a huge text is built), and a render that takes longer than
        :data:`RENDER_TIME_LIMIT_S` (nested loops) is interrupted in its thread."""
        try:
            jt = self._env.get_template(self.path.name)
        except Exception as exc:  # every Jinja and Python error becomes a problem
            raise _RenderFailure(_problem_from_exception(exc, self.path, detail)) from None
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["out"] = _bounded_join(jt.generate(context))
            except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread)
                result["exc"] = exc

        worker = threading.Thread(target=work, name="template-render", daemon=True)
        worker.start()
        worker.join(RENDER_TIME_LIMIT_S)
        if worker.is_alive():
            _interrupt(worker)
            worker.join(1.0)
            raise _RenderFailure(TemplateProblem(
                str(self.path), 1, f"the template takes too long to render (over {RENDER_TIME_LIMIT_S:g} s): "
                "a loop that is too large?"))
        failure = result.get("exc")
        if isinstance(failure, _TooLong):
            raise _RenderFailure(TemplateProblem(
                str(self.path), 1, f"the rendered note is too long (over {MAX_OUTPUT_CHARS} characters)"))
        if failure is not None:
            raise _RenderFailure(_problem_from_exception(failure, self.path, detail)) from None
        return _tidy(result["out"])


class _TooLong(Exception):
    pass


class _RenderTimeout(Exception):
    pass


def _bounded_join(chunks: Any) -> str:
    parts: list[str] = []
    n = 0
    for chunk in chunks:
        n += len(chunk)
        if n > MAX_OUTPUT_CHARS:
            raise _TooLong
        parts.append(chunk)
    return "".join(parts)


def _interrupt(thread: threading.Thread) -> None:
    """Raise :class:`_RenderTimeout` inside ``thread`` (checked between Python bytecodes,
    which is what a Jinja template runs)."""
    import ctypes

    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_RenderTimeout))


class _RenderFailure(Exception):
    def __init__(self, problem: TemplateProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def _sample_text(spec: TemplateSection, i: int) -> str:
    return f"(Eksempeltekst: {spec.title})" if i == 0 else f"(Eksempeltekst {i + 1}: {spec.title})"


@lru_cache(maxsize=1)
def _generated_by() -> str:
    try:
        return f"ambient-scribe {package_version('ambient-scribe')}"
    except Exception:
        return "ambient-scribe"


def _tidy(text: str) -> str:
    """No trailing spaces, at most one blank line in a row, no blank lines at the ends."""
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


# -- Jinja environment ------------------------------------------------------------------
class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus caps on '*' and '**' so a typo cannot build a gigabyte string."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise jinja2.sandbox.SecurityError("exponent too large")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(n, int)
                    and len(seq) * n > _MAX_REPEAT
                ):
                    raise jinja2.sandbox.SecurityError("repetition too large")
        return super().call_binop(context, operator, left, right)


def _mask_front_matter(source: str) -> str:
    """The body as Jinja sees it: the front matter becomes a comment of as many lines,
    so line numbers in Jinja errors are line numbers of the file."""
    source = source.removeprefix("\ufeff")
    fm = _split_front_matter(source)
    if fm is None or fm.end_line is None:
        return source
    lines = source.splitlines(keepends=True)
    head = "".join(lines[: fm.end_line])
    return "{#" + "\n" * head.count("\n") + "#}" + source[len(head) :]


class _FrontMatterLoader(jinja2.FileSystemLoader):
    def __init__(self, searchpath: list[str], sources: Mapping[str, str] | None = None) -> None:
        super().__init__(searchpath)
        self.sources = dict(sources or {})  # in-memory files, as if in searchpath[0]

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Any]:
        if template in self.sources:
            filename = str(Path(self.searchpath[0]) / template)
            return _mask_front_matter(self.sources[template]), filename, lambda: True
        source, filename, uptodate = super().get_source(environment, template)
        return _mask_front_matter(source), filename, uptodate


def _environment(
    search_path: Sequence[Path], sources: Mapping[str, str] | None = None
) -> jinja2.Environment:
    return _Sandbox(
        loader=_FrontMatterLoader([str(p) for p in search_path], sources),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=lambda v: "" if v is None else v,
    )


def _problem_from_exception(exc: BaseException, path: Path, detail: bool = True) -> TemplateProblem:
    """File, line and a clear message for an exception raised by Jinja or a template."""
    file, line, inner = _where(exc, path)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        msg = f"template syntax error: {exc.message}"
    elif isinstance(exc, jinja2.sandbox.SecurityError):
        msg = f"unsafe expression (blocked by the sandbox): {exc}"
    elif isinstance(exc, jinja2.UndefinedError):
        msg = f"undefined variable: {exc.message}"
    elif isinstance(exc, jinja2.TemplatesNotFound | jinja2.TemplateNotFound):
        msg = f"template file {exc.name!r} not found in the template directories"
    elif isinstance(exc, jinja2.TemplateError):
        msg = f"template error: {exc.message or type(exc).__name__}"
    else:  # a Python error raised by an expression (e.g. 1/0, int('x'))
        msg = f"error while rendering: {type(exc).__name__}" + (f": {exc}" if detail else "")
    return TemplateProblem(file, line, " ".join(msg.split()) + inner)


def _where(exc: BaseException, path: Path) -> tuple[str, int, str]:
    """The line in ``path`` (the file being checked) when it is on the stack, else the
    innermost template line; plus " (in FILE:LINE)" when the error is raised deeper, in a
    shared file such as _macros.md.j2."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.lineno:
        return _display(exc.filename, path), exc.lineno, ""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    if not frames:
        return str(path), 1, ""
    inner = frames[-1]
    own = [f for f in frames if _display(f.filename, path) == str(path)]
    if own and own[-1] is not inner:
        return str(path), own[-1].lineno or 1, f" (in {inner.filename}:{inner.lineno})"
    return _display(inner.filename, path), inner.lineno or 1, ""


def _display(filename: str | None, path: Path) -> str:
    """``path`` as the user gave it when the error is in that file, else the other file."""
    if not filename:
        return str(path)
    try:
        if Path(filename).resolve() == path.resolve():
            return str(path)
    except OSError:
        pass
    return filename


# -- front matter -----------------------------------------------------------------------
@dataclass(slots=True)
class _FrontMatter:
    yaml_text: str
    end_line: int | None  # 1-based line of the closing '---'; None: not closed


def _split_front_matter(text: str) -> _FrontMatter | None:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return _FrontMatter("\n".join(lines[1:i]) + "\n", i + 1)
    return _FrontMatter("\n".join(lines[1:]) + "\n", None)


def _child(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


def _yaml_line(node: yaml.Node | None, loc: Sequence[Any]) -> int:
    """The 1-based file line of the YAML node at ``loc`` (or its deepest existing parent)."""
    if node is None:
        return 1
    for key in loc:
        child = _child(node, key)
        if child is None:
            break
        node = child
    return node.start_mark.line + 2  # +1: 1-based; +1: the opening '---'


def _key_line(node: yaml.Node | None, loc: Sequence[Any]) -> int:
    """The line of the mapping key at ``loc`` (e.g. an unknown field)."""
    parent = node
    for key in loc[:-1]:
        parent = _child(parent, key)
    if isinstance(parent, yaml.MappingNode) and loc:
        for k, _ in parent.value:
            if getattr(k, "value", None) == loc[-1]:
                return k.start_mark.line + 2
    return _yaml_line(node, loc)


class FrontMatterLoader(yaml.SafeLoader):
    """YAML for a template's front matter: safe types, and no aliases (``*name``). Plain
    metadata never needs them, and nested aliases ("billion laughs") expand a few hundred
    bytes into billions of nodes: validation and pack import would hang."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in the front matter; write the value out",
                event.start_mark)
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


def front_matter_yaml(text: str) -> Any:
    """``text`` parsed with :class:`FrontMatterLoader`."""
    return yaml.load(text, Loader=FrontMatterLoader)  # noqa: S506 (a SafeLoader)


def _duplicate_keys(node: yaml.Node | None, file: str) -> list[TemplateProblem]:
    out: list[TemplateProblem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for k, v in node.value:
            key = getattr(k, "value", None)
            if key in seen:
                out.append(
                    TemplateProblem(
                        file,
                        k.start_mark.line + 2,
                        f"field {key!r} is given twice (the second would win)",
                    )
                )
            seen.add(key)
            out.extend(_duplicate_keys(v, file))
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            out.extend(_duplicate_keys(v, file))
    return out


def _loc_text(loc: Sequence[Any]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _schema_problems(
    err: ValidationError, node: yaml.Node | None, file: str
) -> list[TemplateProblem]:
    allowed_template = ", ".join(TemplateMeta.model_fields)
    allowed_section = ", ".join(SectionMeta.model_fields)
    allowed_change = ", ".join(ChangeMeta.model_fields)
    out = []
    for e in err.errors():
        loc = tuple(e["loc"])
        where = _loc_text(loc)
        kind = e["type"]
        if kind == "missing":
            parent = _loc_text(loc[:-1])
            msg = f"missing field {loc[-1]!r}" + (f" in {parent}" if parent else "")
            line = _yaml_line(node, loc[:-1])
        elif kind == "extra_forbidden":
            allowed = allowed_template
            if len(loc) > 1 and loc[0] == "sections":
                allowed = allowed_section
            elif len(loc) > 1 and loc[0] == "changes":
                allowed = allowed_change
            msg = f"unknown field {where!r} (allowed: {allowed})"
            line = _key_line(node, loc)
        else:
            text = str(e["msg"]).removeprefix("Value error, ")
            if kind == "too_short" and loc == ("sections",):
                text = "a template needs at least one section"
            elif kind == "string_too_short":
                text = "must not be empty"
            own = kind == "value_error" and len(loc) == 1  # our message names the field
            msg = f"{where}: {text}" if where and not own else text
            line = _yaml_line(node, loc)
        out.append(TemplateProblem(file, line, msg))
    return out


def _semantic_problems(
    meta: TemplateMeta, node: yaml.Node | None, file: str, stem: str
) -> list[TemplateProblem]:
    out = []
    if meta.id != stem:
        out.append(
            TemplateProblem(
                file,
                _yaml_line(node, ("id",)),
                f"id {meta.id!r} must match the file name ({meta.id}{SUFFIX} "
                f"expected, the file is {stem}{SUFFIX})",
            )
        )
    seen_ids: dict[str, int] = {}
    seen_titles: dict[str, int] = {}
    for i, s in enumerate(meta.sections):
        line = _yaml_line(node, ("sections", i))
        if s.id in seen_ids:
            out.append(
                TemplateProblem(
                    file, line, f"duplicate section id {s.id!r} (also section {seen_ids[s.id] + 1})"
                )
            )
        seen_ids.setdefault(s.id, i)
        norm = re.sub(r"[^a-zæøå]+", "", s.title.lower())
        if norm in seen_titles:
            out.append(
                TemplateProblem(
                    file,
                    line,
                    f"duplicate section title {s.title!r} (also section {seen_titles[norm] + 1})",
                )
            )
        seen_titles.setdefault(norm, i)
    for sid in STANDARD_SECTIONS:
        sec = next((s for s in meta.sections if s.id == sid), None)
        if sec is None:
            out.append(
                TemplateProblem(
                    file,
                    _yaml_line(node, ("sections",)),
                    f"standard section {sid!r} is missing: every template must have the sections "
                    f"{', '.join(STANDARD_SECTIONS)} with required: true",
                )
            )
        elif not sec.required:
            idx = meta.sections.index(sec)
            out.append(
                TemplateProblem(
                    file,
                    _yaml_line(node, ("sections", idx)),
                    f"standard section {sid!r} must have required: true",
                )
            )
    return out


def _read_meta(
    path: Path, text: str, file: str
) -> tuple[TemplateMeta | None, list[TemplateProblem], yaml.Node | None]:
    fm = _split_front_matter(text)
    if fm is None:
        return (
            None,
            [
                TemplateProblem(
                    file,
                    1,
                    "no front matter: a template starts with a '---' line, "
                    "the YAML metadata (id, version, title, language, sections) "
                    "and a closing '---' line",
                )
            ],
            None,
        )
    if fm.end_line is None:
        return (
            None,
            [
                TemplateProblem(
                    file, 1, "the front matter is not closed: add a '---' line after the metadata"
                )
            ],
            None,
        )
    try:
        node = yaml.compose(fm.yaml_text, Loader=FrontMatterLoader)
        data = front_matter_yaml(fm.yaml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        msg = f"YAML error in the front matter: {problem}" + (f" ({context})" if context else "")
        return None, [TemplateProblem(file, line, msg)], None
    if not isinstance(data, dict):
        return (
            None,
            [
                TemplateProblem(
                    file, 2, "the front matter must be YAML fields (id: ..., version: ...)"
                )
            ],
            node,
        )
    problems = _duplicate_keys(node, file)
    try:
        meta = TemplateMeta.model_validate(data)
    except ValidationError as exc:
        return None, problems + _schema_problems(exc, node, file), node
    stem = path.name.removesuffix(SUFFIX)
    problems += _semantic_problems(meta, node, file, stem)
    return (None if problems else meta), problems, node


def _template_from_meta(
    meta: TemplateMeta,
    path: Path,
    node: yaml.Node | None,
    search: tuple[Path, ...],
    sources: tuple[tuple[str, str], ...] = (),
) -> NoteTemplate:
    sections = tuple(
        TemplateSection(
            s.id,
            s.title,
            s.instruction,
            s.required,
            s.style,
            tuple(s.vocabulary),
            _yaml_line(node, ("sections", i)),
            s.example,
            tuple(s.records),
        )
        for i, s in enumerate(meta.sections)
    )
    vocab = _clean_words([*meta.vocabulary, *(w for s in meta.sections for w in s.vocabulary)])
    return NoteTemplate(
        meta.id,
        meta.version,
        meta.title,
        meta.language,
        meta.description,
        sections,
        tuple(vocab),
        path,
        search,
        sources,
    )


def _render_checks(tpl: NoteTemplate, file: str, body_line: int) -> list[TemplateProblem]:
    """Render sample drafts and check that the body prints what the metadata promises."""
    problems: list[TemplateProblem] = []
    try:
        full = tpl._render(tpl.context(tpl.sample_draft(), {"date": "01.01.2000"}))
        empty = tpl._render(
            tpl.context(tpl.sample_draft(empty=True, extractive=True), {"date": "01.01.2000"})
        )
    except _RenderFailure as exc:
        return [exc.problem]
    text = LANGUAGE_TEXT[tpl.language]
    positions: list[tuple[int, TemplateSection]] = []
    for spec in tpl.sections:
        marker = _sample_text(spec, 0)
        pos = full.find(marker)
        if pos < 0:
            kind = "required section" if spec.required else "section"
            problems.append(
                TemplateProblem(
                    file,
                    spec.line or body_line,
                    f"{kind} {spec.id!r} ({spec.title}) is declared but the body does not "
                    "render it (its text would be lost): use the base layout or "
                    f'm.section("{spec.id}")',
                )
            )
        else:
            positions.append((pos, spec))
    order = [s.id for _, s in sorted(positions, key=lambda x: x[0])]
    declared = [s.id for _, s in positions]
    if order != declared:
        problems.append(
            TemplateProblem(
                file,
                body_line,
                f"the body renders the sections in a different order ({', '.join(order)}) "
                f"than declared ({', '.join(declared)}); the drafter writes them in the "
                "declared order",
            )
        )
    rendered = {s.id for _, s in positions}
    for spec in tpl.required_sections:
        if spec.id in rendered and spec.title.lower() not in empty.lower():
            problems.append(
                TemplateProblem(
                    file,
                    spec.line or body_line,
                    f"required section {spec.id!r} ({spec.title}) is not shown when it is empty "
                    f"(a required section is always printed, with {text['not_mentioned']!r})",
                )
            )
    if text["disclosure"] not in full:
        problems.append(
            TemplateProblem(
                file,
                body_line,
                "the body does not print the AI transparency line {{ meta.disclosure }} "
                "(mandatory; the base layout prints it in its footer block)",
            )
        )
    if text["extractive_notice"] not in empty:
        problems.append(
            TemplateProblem(
                file,
                body_line,
                "the body does not print the extractive marker {{ meta.extractive_notice }} when "
                "meta.extractive is true (mandatory; the base layout prints it)",
            )
        )
    elif text["extractive_notice"] in full:
        problems.append(
            TemplateProblem(
                file,
                body_line,
                "the extractive marker is printed although meta.extractive is false",
            )
        )
    return problems


def _is_partial(path: Path) -> bool:
    return path.name.startswith("_")


def _search_path(path: Path, extra: Sequence[Path] | None = None) -> tuple[Path, ...]:
    out: list[Path] = []
    for d in (path.resolve().parent, *template_dirs(extra, quiet=True)):
        if d not in out:
            out.append(d)
    return tuple(out)


def _check_file(
    path: Path, extra: Sequence[Path] | None = None
) -> tuple[NoteTemplate | None, list[TemplateProblem]]:
    """Validate one file; the template if it is valid."""
    file = str(path)
    if not path.exists():
        return None, [TemplateProblem(file, 1, "file not found")]
    if path.is_dir():
        return None, [TemplateProblem(file, 1, "is a directory, not a template file")]
    if not path.name.endswith(SUFFIX):
        return None, [TemplateProblem(file, 1, f"a template file must be named <id>{SUFFIX}")]
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [TemplateProblem(file, 1, f"not UTF-8 text (byte {exc.start})")]
    except OSError as exc:
        return None, [TemplateProblem(file, 1, f"cannot read the file: {exc.strerror or exc}")]
    return _check_text(path, text, extra)


def _check_text(
    path: Path,
    text: str,
    extra: Sequence[Path] | None = None,
    sources: Mapping[str, str] | None = None,
) -> tuple[NoteTemplate | None, list[TemplateProblem]]:
    """Validate ``text`` as the file ``path``; ``sources`` (file name → text) are
    in-memory files that hide the files of that name in ``path``'s directory."""
    file = str(path)
    search = _search_path(path, extra)
    in_memory = tuple(sorted((sources or {}).items()))
    env = _environment(search, dict(in_memory))
    body = _mask_front_matter(text)
    # Syntax of the body (also for shared files and when the metadata is broken).
    try:
        env.parse(body, path.name, str(path.resolve()))
    except jinja2.TemplateSyntaxError as exc:
        syntax = [_problem_from_exception(exc, path)]
    else:
        syntax = []
    if _is_partial(path):
        return None, syntax
    meta, problems, node = _read_meta(path, text, file)
    problems += syntax
    if meta is None or problems:
        return None, problems
    tpl = _template_from_meta(meta, path.resolve(), node, search, in_memory)
    fm = _split_front_matter(text)
    body_line = fm.end_line + 1 if fm is not None and fm.end_line is not None else 1
    problems = _render_checks(tpl, file, body_line)
    return (None if problems else tpl), problems


def _sorted(problems: list[TemplateProblem]) -> list[TemplateProblem]:
    return sorted(problems, key=lambda p: (p.file, p.line))


# -- public API ---------------------------------------------------------------------------
def template_dirs(extra: Sequence[Path] | None = None, *, quiet: bool = False) -> list[Path]:
    """Where templates are looked up, first match wins: ``extra`` (e.g. ``--template-dir``),
    then ``$SCRIBE_TEMPLATE_DIR`` (``os.pathsep``-separated, for hospital IT), then the
    built-in ``templates_notes/``. A missing ``extra`` directory is a :class:`TemplateError`;
    a missing directory from the environment is skipped with a warning."""
    out: list[Path] = []
    for d in extra or ():
        p = Path(d).expanduser()
        if not p.is_dir():
            raise TemplateError(f"template directory not found: {p}")
        out.append(p.resolve())
    for part in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if not part.strip():
            continue
        p = Path(part.strip()).expanduser()
        if p.is_dir():
            out.append(p.resolve())
        elif not quiet and p not in _warned:
            _warned.add(p)
            logger.warning("%s entry %s is not a directory; skipped", ENV_VAR, p)
    if BUILTIN_DIR.is_dir():
        out.append(BUILTIN_DIR)
    else:
        logger.warning("built-in template directory missing: %s", BUILTIN_DIR)
    seen: list[Path] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def template_files(
    extra: Sequence[Path] | None = None, *, include_shared: bool = False
) -> list[Path]:
    """Every ``*.md.j2`` file in the template directories, in lookup order (an id found in
    an earlier directory hides the same id later on)."""
    files: list[Path] = []
    for d in template_dirs(extra):
        for p in sorted(d.glob("*" + SUFFIX)):
            if include_shared or not _is_partial(p):
                files.append(p)
    return files


def available_templates(extra: Sequence[Path] | None = None) -> dict[str, Path]:
    """Template id → file, first directory wins (valid or not; see :func:`list_templates`)."""
    found: dict[str, Path] = {}
    for p in template_files(extra):
        found.setdefault(p.name.removesuffix(SUFFIX), p)
    return found


def validate_template(path: Path, extra: Sequence[Path] | None = None) -> list[TemplateProblem]:
    """Everything wrong with the template (or shared ``_*.md.j2``) file ``path``; empty if valid."""
    path = Path(path)
    try:
        return _sorted(_check_file(path, extra)[1])
    except TemplateError as exc:
        return [TemplateProblem(str(path), 1, str(exc))]
    except Exception as exc:  # never let a bug in here take the caller down
        logger.debug("validation of %s failed", path, exc_info=True)
        return [TemplateProblem(str(path), 1, f"cannot validate: {type(exc).__name__}: {exc}")]


def check_template_text(
    text: str,
    path: Path,
    extra: Sequence[Path] | None = None,
    *,
    sources: Mapping[str, str] | None = None,
) -> tuple[NoteTemplate | None, list[TemplateProblem]]:
    """Validate template text that is not (yet) saved, as if it were the file ``path``
    (shared files resolve from ``path``'s directory, then :func:`template_dirs`); nothing
    is written. ``sources`` adds more in-memory files (name → text) in that directory, e.g.
    the shared files of a template pack. Returns the template (rendering from the text)
    when valid, and the problems (sorted; empty when valid). Never raises."""
    path = Path(path)
    text = text.removeprefix("\ufeff")
    try:
        if not path.name.endswith(SUFFIX):
            msg = f"a template file must be named <id>{SUFFIX}"
            return None, [TemplateProblem(str(path), 1, msg)]
        tpl, problems = _check_text(path, text, extra, {**(sources or {}), path.name: text})
        return tpl, _sorted(problems)
    except TemplateError as exc:
        return None, [TemplateProblem(str(path), 1, str(exc))]
    except Exception as exc:  # never let a bug in here take the caller down
        logger.debug("validation of %s failed", path, exc_info=True)
        return None, [TemplateProblem(str(path), 1, f"cannot validate: {type(exc).__name__}")]


def _looks_like_path(s: str) -> bool:
    return s.endswith(".j2") or "/" in s or os.sep in s


def load_template(id_or_path: str | Path, extra: Sequence[Path] | None = None) -> NoteTemplate:
    """The template with this id (a ``str``, looked up in :func:`template_dirs`) or at this
    path (a :class:`~pathlib.Path`), validated. A string is always an id: what a user types
    after ``--template`` never reads a file ("../../etc/passwd" is an unknown id). Raises
    :class:`TemplateError` (unknown id, naming the available ones, or the first problem found)."""
    try:
        key = str(id_or_path).strip()
        if isinstance(id_or_path, Path):
            path = id_or_path.expanduser()
            if not path.is_file():
                raise TemplateError(f"template file not found: {path}")
        elif not _TEMPLATE_ID.match(key):
            hint = " (a template file is checked with 'scribe templates validate PATH')" if _looks_like_path(key) else ""
            raise TemplateError(f"'{printable(key, 80)}' is not a template id: lower-case letters, digits and "
                                f"'-', see 'scribe templates list'{hint}")
        else:
            available = available_templates(extra)
            if key not in available:
                ids = ", ".join(sorted(available)) or "none"
                raise TemplateError(f"unknown note template {key!r}; available: {ids}")
            path = available[key]
        tpl, problems = _check_file(path, extra)
        problems = _sorted(problems)
        if tpl is None:
            if not problems:
                problems = [
                    TemplateProblem(str(path), 1, "a shared layout file, not a note template")
                ]
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise TemplateError(
                f"note template {key!r} is invalid (see 'scribe templates validate {path}'): "
                f"{problems[0]}{more}"
            )
        return tpl
    except TemplateError:
        raise
    except Exception as exc:
        logger.debug("loading template %s failed", id_or_path, exc_info=True)
        raise TemplateError(
            f"note template {str(id_or_path)!r} cannot be loaded: {type(exc).__name__}"
        ) from None


def list_templates(extra: Sequence[Path] | None = None) -> list[NoteTemplate]:
    """All valid templates, by id (an invalid one is skipped with a warning naming it)."""
    out = []
    for tid, path in sorted(available_templates(extra).items()):
        try:
            out.append(load_template(path, extra))
        except TemplateError as exc:
            logger.warning("skipping template %s: %s", tid, exc)
    return out
