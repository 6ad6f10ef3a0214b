"""A loaded, validated note template (:class:`NoteTemplate`, its :class:`TemplateSection`s):
the variables its body sees, and rendering a draft into the note text."""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import jinja2

from summarize.errors import TemplateError
from summarize.templates.sandbox import (
    MAX_OUTPUT_CHARS,
    RENDER_TIME_LIMIT_S,
    _bounded_join,
    _environment,
    _interrupt,
    _problem_from_exception,
    _RenderFailure,
    _tidy,
    _TooLong,
)
from summarize.templates.schema import LANGUAGE_TEXT, TemplateProblem
from summarize.types import NoteDraft, NoteSection, Sentence

logger = logging.getLogger(__name__)


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
    main_speaker: str = "pasient"  # the main voice that is not the clinician's (pediatri: "pårørende")

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

        Bounded: the output is counted as it is produced (over
        :data:`~summarize.templates.sandbox.MAX_OUTPUT_CHARS` it stops, before a huge text is
        built), and a render that takes longer than
        :data:`~summarize.templates.sandbox.RENDER_TIME_LIMIT_S` (nested loops) is interrupted
        in its thread."""
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


def _sample_text(spec: TemplateSection, i: int) -> str:
    return f"(Eksempeltekst: {spec.title})" if i == 0 else f"(Eksempeltekst {i + 1}: {spec.title})"


@lru_cache(maxsize=1)
def _generated_by() -> str:
    try:
        return f"ambient-scribe {package_version('ambient-scribe')}"
    except Exception:
        return "ambient-scribe"
