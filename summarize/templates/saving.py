"""Saving an edited note template (template editor, superuser mode): unsaved text
validated as if it were in its directory, the patch version bumped, the change note added
to ``changes:`` and the file written atomically. An invalid template writes nothing.
Nothing here logs template or note text."""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from summarize.errors import TemplateError
from summarize.templates.discovery import SUFFIX
from summarize.templates.model import NoteTemplate
from summarize.templates.schema import TemplateProblem
from summarize.templates.template import check_template_text
from summarize.templates.versions import (
    _file_version,
    _front_matter_data,
    _normalize,
    _parse_version,
    _with_changes,
    bump_version,
    set_version,
    template_id_of,
    version_key,
    version_of,
)

logger = logging.getLogger(__name__)

MAX_NOTE_CHARS = 500


class TemplateInvalidError(TemplateError):
    """The template text has validation problems (kept in :attr:`problems`)."""

    def __init__(self, message: str, problems: Sequence[TemplateProblem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class SavedTemplate:
    """The result of :func:`save_template`; ``text`` is what was written."""

    path: Path
    id: str
    old_version: str | None
    new_version: str
    text: str


# -- validation ------------------------------------------------------------------------------
def check_text(
    text: str, name: str, directory: Path
) -> tuple[NoteTemplate | None, list[TemplateProblem]]:
    """The template (rendering from the text) when valid, and the problems, of template
    text checked as if it were the file ``directory/name``. Never raises."""
    return check_template_text(_normalize(text), Path(directory) / name)


def validate_text(text: str, name: str, directory: Path) -> list[TemplateProblem]:
    """Everything wrong with template text not saved yet, checked as if it were the file
    ``directory/name`` (nothing is written). Empty when valid."""
    return check_text(text, name, directory)[1]


def template_from_text(text: str, name: str, directory: Path) -> NoteTemplate:
    """The template of unsaved text (it renders from the text, e.g. for a preview).
    Raises :class:`TemplateInvalidError` naming the first problem."""
    tpl, problems = check_template_text(_normalize(text), Path(directory) / name)
    if tpl is None:
        raise TemplateInvalidError(_problems_message(name, problems), problems)
    return tpl


def _problems_message(name: str, problems: Sequence[TemplateProblem], prefix: str = "") -> str:
    if not problems:
        return f"{prefix}{name}: the template is invalid"
    first = problems[0]
    file = name if Path(first.file).name == name else Path(first.file).name
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{prefix}{file}:{first.line}: {first.message}{more}"


def name_for(text: str) -> str:
    """The file name the text would be saved as: ``<id>.md.j2`` (``unnamed.md.j2`` when
    the front matter has no valid id; validation then reports why)."""
    tid = template_id_of(text)
    return f"{tid}{SUFFIX}" if tid else f"unnamed{SUFFIX}"


# -- saving ----------------------------------------------------------------------------------
def save_template(
    text: str,
    directory: Path,
    *,
    change_note: str,
    previous_version: str | None = None,
    today: _dt.date | None = None,
) -> SavedTemplate:
    """Validate ``text`` and save it as ``directory/<id>.md.j2``.

    When the text's version equals the version of the file it replaces (or
    ``previous_version``), the patch version is bumped; a version lower than those is
    refused. ``change_note`` (required) is appended to ``changes:`` in the front matter.
    The file is written atomically; on any problem a :class:`TemplateError` is raised and
    nothing is written."""
    directory = Path(directory)
    text = _normalize(text)
    name = name_for(text)
    note = " ".join(str(change_note).split())
    if not note:
        raise TemplateError(f"{name}: a change note is required to save a template")
    if len(note) > MAX_NOTE_CHARS:
        raise TemplateError(f"{name}: the change note is too long (at most {MAX_NOTE_CHARS} "
                            "characters)")
    if not directory.is_dir():
        raise TemplateError(f"template directory not found: {directory}")
    target = directory / name
    tpl, problems = check_template_text(text, target)
    if tpl is None:
        raise TemplateInvalidError(
            _problems_message(name, problems, "not saved: "), problems
        )
    if previous_version is not None:
        _parse_version(previous_version)
    on_disk = _file_version(target) if target.exists() else None
    known = [v for v in (on_disk, previous_version) if v]
    new_version = tpl.version
    if known:
        highest = max(known, key=version_key)
        if any(version_key(tpl.version) == version_key(v) for v in known):
            new_version = bump_version(highest)
        elif version_key(tpl.version) < version_key(highest):
            raise TemplateError(
                f"{name}: version {tpl.version} is lower than the saved version {highest}; "
                "not saved"
            )
    data = _front_matter_data(text) or {}
    changes = [
        {"version": str(c.get("version", "")), "date": str(c.get("date", "")),
         "note": str(c.get("note", ""))}
        for c in data.get("changes") or []
        if isinstance(c, dict)
    ]
    date = (today or _dt.date.today()).isoformat()
    changes.append({"version": new_version, "date": date, "note": note})
    try:
        new_text = set_version(text, new_version) if new_version != tpl.version else text
        new_text = _with_changes(new_text, changes)
    except yaml.YAMLError:
        raise TemplateError(f"{name}: cannot update the front matter; not saved") from None
    check, problems = check_template_text(new_text, target)
    if check is None or check.version != new_version or version_of(new_text) != new_version:
        raise TemplateInvalidError(
            _problems_message(name, problems, "not saved (after recording the change): "),
            problems,
        )
    _write_files({target: new_text.encode("utf-8")})
    logger.info("saved note template %s %s (was %s)", tpl.id, new_version, on_disk or "new")
    return SavedTemplate(target, tpl.id, on_disk or previous_version, new_version, new_text)


def _write_files(files: Mapping[Path, bytes]) -> None:
    """Write every file atomically: all temporary files first (same directory, fsync),
    then ``os.replace`` each. A failure before the first replace leaves nothing behind."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
            os.chmod(tmp, mode)
        while staged:
            tmp, path = staged[0]
            os.replace(tmp, path)
            staged.pop(0)
    except OSError as exc:
        raise TemplateError(
            f"cannot write {staged[0][1] if staged else 'the template'}: {exc.strerror or exc}"
        ) from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for parent in {p.parent for p in files}:
        fsync_dir(parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
