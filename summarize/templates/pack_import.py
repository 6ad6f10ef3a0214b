"""Installing a template pack into a template directory: every name, checksum and
template checked before any file is written (all or nothing); an installed template that is
equal or newer, or a different shared file, is kept unless overwriting is asked for."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from summarize.templates.discovery import SUFFIX
from summarize.templates.pack import Kind, TemplatePackError, _read_pack
from summarize.templates.saving import _problems_message, _write_files
from summarize.templates.template import check_template_text
from summarize.templates.versions import _file_version, _normalize, version_key

logger = logging.getLogger(__name__)

Action = Literal["added", "updated", "replaced", "skipped"]


@dataclass(frozen=True, slots=True)
class ImportedTemplate:
    """What :func:`import_pack` did with one file of the pack."""

    name: str
    kind: Kind
    id: str
    version: str | None
    previous_version: str | None
    action: Action
    reason: str = ""

    @property
    def written(self) -> bool:
        return self.action != "skipped"


def import_pack(
    zip_path: Path, directory: Path, *, overwrite_newer: bool = False
) -> list[ImportedTemplate]:
    """Import a template pack into ``directory``: every name, checksum and template is
    checked before any file is written (all or nothing). A template whose installed
    version is equal or newer, and a different shared file of the same name, are kept
    (reported as skipped) unless ``overwrite_newer``."""
    zip_path, directory = Path(zip_path), Path(directory)
    label = zip_path.name
    entries, texts = _read_pack(zip_path)
    if directory.exists() and not directory.is_dir():
        raise TemplatePackError(f"not a directory: {directory}")

    results: list[ImportedTemplate] = []
    writes: dict[Path, bytes] = {}
    shared_written: dict[str, str] = {}
    for e in (e for e in entries if e.kind == "shared"):
        target = directory / e.name
        text = texts[e.name]
        _, problems = check_template_text(text, target)
        if problems:
            raise TemplatePackError(_problems_message(e.name, problems, f"{label}: ")
                                    + "; nothing was imported")
        if not target.exists():
            action: Action = "added"
        elif _read_text(target) == text:
            results.append(ImportedTemplate(e.name, "shared", e.id, None, None, "skipped",
                                            "identical to the installed file"))
            continue
        elif overwrite_newer:
            action = "replaced"
        else:
            results.append(ImportedTemplate(
                e.name, "shared", e.id, None, None, "skipped",
                "a different shared file with this name is installed; kept it",
            ))
            continue
        shared_written[e.name] = text
        writes[target] = text.encode("utf-8")
        results.append(ImportedTemplate(e.name, "shared", e.id, None, None, action))

    for e in (e for e in entries if e.kind == "template"):
        target = directory / e.name
        tpl, problems = check_template_text(texts[e.name], target, sources=shared_written)
        if tpl is None:
            raise TemplatePackError(_problems_message(e.name, problems, f"{label}: ")
                                    + "; nothing was imported")
        if e.version is not None and e.version != tpl.version:
            raise TemplatePackError(
                f"{label}: {e.name!r} has version {tpl.version} but the manifest says "
                f"{e.version}; nothing was imported"
            )
        current = _file_version(target) if target.exists() else None
        if not target.exists():
            action = "added"
        elif current is not None and version_key(tpl.version) > version_key(current):
            action = "updated"
        elif overwrite_newer:
            action = "replaced"
        else:
            why = (
                f"installed version {current} is newer than or equal to {tpl.version}"
                if current is not None
                else "the installed file has no readable version"
            )
            results.append(ImportedTemplate(e.name, "template", tpl.id, tpl.version, current,
                                            "skipped", why))
            continue
        writes[target] = texts[e.name].encode("utf-8")
        results.append(ImportedTemplate(e.name, "template", tpl.id, tpl.version, current, action))

    if any(r.kind == "shared" and r.action == "replaced" for r in results):
        _check_existing_still_valid(label, directory, shared_written, set(writes))
    if writes:
        if not directory.exists():
            try:
                directory.mkdir(parents=True)
            except OSError as exc:
                raise TemplatePackError(
                    f"cannot create {directory}: {exc.strerror or exc}"
                ) from None
        _write_files(writes)
    logger.info(
        "imported template pack %s: %d written, %d skipped",
        label, sum(r.written for r in results), sum(not r.written for r in results),
    )
    return results


def _read_text(path: Path) -> str | None:
    try:
        return _normalize(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return None


def _check_existing_still_valid(
    label: str, directory: Path, shared: Mapping[str, str], replaced: set[Path]
) -> None:
    """Replacing a shared file must not break a template already in ``directory``."""
    for path in sorted(directory.glob("*" + SUFFIX)):
        if path.name.startswith("_") or path in replaced:
            continue
        text = _read_text(path)
        if text is None or check_template_text(text, path)[0] is None:
            continue  # already invalid: not made worse by the import
        _, problems = check_template_text(text, path, sources=shared)
        if problems:
            raise TemplatePackError(
                f"{label}: its shared files would break the installed template {path.name} "
                f"({problems[0].message}); nothing was imported"
            )
