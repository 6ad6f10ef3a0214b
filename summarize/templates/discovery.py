"""Where note templates are found: the template directories (``--template-dir``,
``$SCRIBE_TEMPLATE_DIR``, the built-in ``templates_notes/``) and the ``*.md.j2`` files in them."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from summarize.errors import TemplateError

logger = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent.parent.parent / "templates_notes"
ENV_VAR = "SCRIBE_TEMPLATE_DIR"
SUFFIX = ".md.j2"
_warned: set[Path] = set()


def _is_partial(path: Path) -> bool:
    return path.name.startswith("_")


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
    """Template id → file, first directory wins (valid or not; see :func:`~summarize.templates.template.list_templates`)."""
    found: dict[str, Path] = {}
    for p in template_files(extra):
        found.setdefault(p.name.removesuffix(SUFFIX), p)
    return found
