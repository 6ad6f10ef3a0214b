"""``scribe templates``: list, show, validate and try out note templates.

    scribe templates list [--template-dir DIR]
    scribe templates show ID [--sample] [--json]
    scribe templates validate [PATH ...]        # no PATH: every known template file
    scribe templates render ID --transcript FILE

``validate`` prints one ``file:line: message`` per problem and exits 0 when everything
is valid, 1 otherwise. Other errors print one line ``scribe: error: ...`` on stderr.
``render`` prints the note to stdout only; nothing is written to disk or logged.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from asr.errors import ScribeError
from summarize.errors import TemplateError
from summarize.templates.discovery import SUFFIX, available_templates, template_dirs, template_files
from summarize.templates.model import NoteTemplate
from summarize.templates.schema import TemplateProblem
from summarize.templates.template import load_template, validate_template
from summarize.types import Flag, NoteDraft, NoteSection, Sentence

logger = logging.getLogger(__name__)

_PREFIX_SPEAKERS = ("lege", "pasient", "pårørende", "pårørande")


def add_templates_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``templates`` and its actions to the ``scribe`` sub-commands."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--template-dir",
        action="append",
        type=Path,
        metavar="DIR",
        dest="template_dir",
        help="extra template directory, looked up first (repeatable; also $SCRIBE_TEMPLATE_DIR)",
    )
    t = sub.add_parser("templates", help="list, show, validate and try out note templates")
    tsub = t.add_subparsers(dest="templates_command", metavar="ACTION", required=True)
    tsub.add_parser("list", parents=[common], help="list the available templates")
    sh = tsub.add_parser("show", parents=[common], help="a template's metadata and sections")
    sh.add_argument("id", metavar="ID", help="template id (see 'scribe templates list') or a file")
    sh.add_argument(
        "--sample", action="store_true", help="also print the note rendered from placeholder text"
    )
    sh.add_argument("--json", action="store_true", help="the metadata as JSON")
    va = tsub.add_parser(
        "validate", parents=[common], help="check template files (default: all known ones)"
    )
    va.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="template file or directory"
    )
    re_ = tsub.add_parser(
        "render", parents=[common], help="render a note from a transcript file (a preview)"
    )
    re_.add_argument("id", metavar="ID", help="template id or file")
    re_.add_argument(
        "--transcript",
        type=Path,
        required=True,
        metavar="FILE",
        help="plain text, one utterance per line (optional 'Lege:'/'Pasient:'/'Pårørende:' prefix)",
    )


def cmd_templates(args: argparse.Namespace) -> int:
    """Run ``scribe templates ACTION``; the exit code. Never raises for user errors."""
    actions = {"list": _list, "show": _show, "validate": _validate, "render": _render}
    try:
        return actions[args.templates_command](args)
    except ScribeError as exc:
        print(f"scribe: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _extra(args: argparse.Namespace) -> list[Path] | None:
    return getattr(args, "template_dir", None) or None


def _list(args: argparse.Namespace) -> int:
    extra = _extra(args)
    templates: list[NoteTemplate] = []
    for tid, path in sorted(available_templates(extra).items()):
        try:
            templates.append(load_template(path, extra))
        except TemplateError as exc:
            print(f"warning: template {tid} is skipped: {exc}", file=sys.stderr)
    if not templates:
        print(
            "no valid note templates found in: " + ", ".join(map(str, template_dirs(extra))),
            file=sys.stderr,
        )
        return 1
    width = max(len(t.id) for t in templates)
    for t in templates:
        print(
            f"{t.id:<{width}}  {t.version:<8} {t.language}  {t.title}  ({len(t.sections)} sections)"
        )
    return 0


def _template_dict(t: NoteTemplate) -> dict[str, Any]:
    return {
        "id": t.id,
        "version": t.version,
        "title": t.title,
        "language": t.language,
        "description": t.description,
        "path": str(t.path),
        "sections": [
            {
                "id": s.id,
                "title": s.title,
                "instruction": s.instruction,
                "required": s.required,
                "style": s.style,
                "vocabulary": list(s.vocabulary),
                "example": s.example,
                "records": list(s.records),
            }
            for s in t.sections
        ],
        "vocabulary": list(t.vocabulary),
    }


def _show(args: argparse.Namespace) -> int:
    t = load_template(args.id, _extra(args))
    if args.json:
        print(json.dumps(_template_dict(t), ensure_ascii=False, indent=2))
        return 0
    lang = {"nb": "bokmål", "nn": "nynorsk"}.get(t.language, t.language)
    print(f"{t.id} {t.version}: {t.title}")
    print(f"  language: {t.language} ({lang})")
    print(f"  file:     {t.path}")
    if t.description:
        print(f"  {t.description}")
    print("sections:")
    for i, s in enumerate(t.sections, 1):
        flags = ", ".join(
            x
            for x in (
                "required" if s.required else "",
                "one sentence per line" if s.style == "lines" else "",
                ("records: " + "/".join(s.records)) if s.records else "",
            )
            if x
        )
        print(f"  {i}. {s.id}: {s.title}" + (f"  [{flags}]" if flags else ""))
        print(f"     {s.instruction}")
        if s.example:
            print(f"     example: {s.example}")
    if t.vocabulary:
        print("vocabulary (ASR prompt words): " + ", ".join(t.vocabulary))
    if args.sample:
        print("\n" + t.render_sample())
    return 0


def _validate(args: argparse.Namespace) -> int:
    extra = _extra(args)
    problems: list[TemplateProblem] = []
    files: list[Path] = []
    if not args.paths:
        files = template_files(extra, include_shared=True)
    for p in args.paths:
        if p.is_dir():
            found = sorted(p.glob("*" + SUFFIX))
            if not found:
                problems.append(TemplateProblem(str(p), 1, f"no *{SUFFIX} files in this directory"))
            files.extend(found)
        else:
            files.append(p)
    bad: set[str] = {p.file for p in problems}
    for f in files:
        found = validate_template(f, extra)
        if found:
            bad.add(str(f))
        problems.extend(found)
    for pr in problems:
        print(pr)
    if problems:
        print(f"{len(problems)} problem(s) in {len(bad)} of {len(files)} file(s)", file=sys.stderr)
        return 1
    print(f"{len(files)} file(s) valid", file=sys.stderr)
    return 0


def _render(args: argparse.Namespace) -> int:
    template = load_template(args.id, _extra(args))
    draft = draft_for_render(template, args.transcript)
    print(template.render(draft))
    return 0


# -- drafting for 'render' ----------------------------------------------------------------
def draft_for_render(template: NoteTemplate, transcript_path: Path) -> NoteDraft:
    """A draft of ``transcript_path`` to preview ``template`` with.

    Uses ``summarize.draft.extractive.quick_draft(template, transcript_path)`` when that
    module provides it; otherwise an extractive placeholder: every utterance, in order, in the
    first section, marked extractive (no language model is run here).
    """
    try:
        from summarize.draft.extractive import quick_draft  # type: ignore[attr-defined]
    except ImportError:
        quick_draft = None
    if quick_draft is not None:
        draft: NoteDraft = quick_draft(template, transcript_path)
        return draft
    return _placeholder_draft(template, _read_lines(transcript_path))


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """``(index, text)`` per non-empty line, speaker prefix removed."""
    from summarize.errors import TranscriptInputError

    if not path.exists():
        raise TranscriptInputError(f"transcript not found: {path}")
    if path.is_dir():
        raise TranscriptInputError(f"{path} is a directory, not a transcript file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TranscriptInputError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise TranscriptInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    out: list[tuple[int, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        head, sep, rest = line.partition(":")
        if sep and head.strip().lower() in _PREFIX_SPEAKERS:
            line = rest.strip()
        if line:
            out.append((len(out), line))
    if not out:
        raise TranscriptInputError(f"transcript is empty: {path} has no text")
    return out


def _placeholder_draft(template: NoteTemplate, lines: list[tuple[int, str]]) -> NoteDraft:
    draft = template.empty_draft()
    draft.sections[0] = NoteSection(
        template.sections[0].id, template.sections[0].title, [Sentence(t, (i,)) for i, t in lines]
    )
    draft.extractive = True
    note = (
        "Forhåndsvisning: alle utsagn er lagt i første seksjon uten språkmodell."
        if template.language == "nb"
        else "Førehandsvising: alle utsegner er lagde i første seksjon utan språkmodell."
    )
    draft.flags.append(Flag("extractive", note, template.sections[0].id))
    return draft
