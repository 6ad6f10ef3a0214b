"""Note templates per specialty: validating and loading them (the entry point).

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

The metadata is checked against :class:`~summarize.templates.schema.TemplateMeta` (pydantic;
read by :mod:`~summarize.templates.front_matter`); the body is rendered
(:mod:`~summarize.templates.sandbox`) in a :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`
with ``StrictUndefined``, autoescape off (plain text), loading only from the template
directories (:mod:`~summarize.templates.discovery`). Files whose name starts with
``_`` (``_base.md.j2``, ``_macros.md.j2``) are shared layout pieces, not templates.

Every template must declare the standard sections ``anamnese``, ``vurdering`` and ``plan``
as ``required: true``. A required section is always printed (``Ikke omtalt.`` when the
draft has nothing for it); an optional one only when it has text. Validation renders a
sample draft and checks that every declared section shows up, in the declared order, and
that the AI transparency line (``meta.disclosure``) and the extractive marker are printed.

Nothing here logs or stores patient text; errors name files, lines and template syntax only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import jinja2
import yaml

from asr.errors import printable
from summarize.errors import TemplateError
from summarize.templates.discovery import SUFFIX, _is_partial, available_templates, template_dirs
from summarize.templates.front_matter import _read_meta, _split_front_matter, _yaml_line
from summarize.templates.model import NoteTemplate, TemplateSection, _sample_text
from summarize.templates.sandbox import _environment, _mask_front_matter, _problem_from_exception, _RenderFailure
from summarize.templates.schema import _TEMPLATE_ID, LANGUAGE_TEXT, TemplateMeta, TemplateProblem, _clean_words

logger = logging.getLogger(__name__)


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
        meta.main_speaker,
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
    (shared files resolve from ``path``'s directory, then
    :func:`~summarize.templates.discovery.template_dirs`); nothing is written. ``sources``
    adds more in-memory files (name → text) in that directory, e.g. the shared files of a
    template pack. Returns the template (rendering from the text)
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
    """The template with this id (a ``str``, looked up in
    :func:`~summarize.templates.discovery.template_dirs`) or at this path (a
    :class:`~pathlib.Path`), validated. A string is always an id: what a user types
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
