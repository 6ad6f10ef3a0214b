"""Template packs (zip) for sharing note templates: the archive format (the templates, the
shared files they use from their own directory, ``manifest.json`` with id, version and
SHA-256 per file), writing a pack (export) and reading one back with every check (names,
sizes, manifest, checksums). Installing a pack is :mod:`summarize.templates.pack_import`.

Templates describe the layout of a note; they never hold patient text. Nothing here logs
template or note text; errors name files, lines and versions only."""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import jinja2
import jinja2.meta

from summarize.errors import TemplateError
from summarize.templates.discovery import SUFFIX, available_templates, template_dirs
from summarize.templates.saving import _problems_message
from summarize.templates.template import check_template_text
from summarize.templates.versions import _front_matter, _normalize

logger = logging.getLogger(__name__)

PACK_FORMAT = "ambient-scribe-template-pack"
PACK_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_PACK_FILES = 200
MAX_FILE_BYTES = 1_000_000
MAX_PACK_BYTES = 20_000_000

_PACK_NAME = re.compile(
    r"^(?:_[A-Za-z0-9][A-Za-z0-9_-]*|[a-z][a-z0-9]*(?:-[a-z0-9]+)*)" + re.escape(SUFFIX) + "$"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Kind = Literal["template", "shared"]


class TemplatePackError(TemplateError):
    """A template pack cannot be exported or imported."""


@dataclass(frozen=True, slots=True)
class PackEntry:
    """One file of a template pack, as listed in its manifest."""

    name: str
    kind: Kind
    id: str
    version: str | None
    sha256: str


# -- export ----------------------------------------------------------------------------------
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _body(text: str) -> str:
    span = _front_matter(text)
    if span is None:
        return text
    nl = text.find("\n", span[1])
    return "" if nl < 0 else text[nl + 1 :]


def _references(text: str) -> tuple[set[str], bool]:
    """The template names a file's body extends/imports/includes; True if some are
    computed at render time (then every shared file of its directory is packed)."""
    try:
        ast = jinja2.Environment().parse(_body(_normalize(text)))
    except jinja2.TemplateSyntaxError:
        return set(), True
    names: set[str] = set()
    dynamic = False
    for ref in jinja2.meta.find_referenced_templates(ast):
        if ref is None:
            dynamic = True
        else:
            names.add(ref)
    return names, dynamic


def _shared_files_of(path: Path, search: Sequence[Path]) -> list[Path]:
    """The shared ``_*.md.j2`` files in ``path``'s directory that ``path`` uses (directly
    or through other shared files)."""
    home = path.parent
    found: list[Path] = []
    todo = [path]
    seen: set[Path] = set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            text = current.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            continue
        refs, dynamic = _references(text)
        if dynamic:
            refs |= {p.name for p in home.glob("_*" + SUFFIX)}
        for ref in sorted(refs):
            hit = next((d / ref for d in search if (d / ref).is_file()), None)
            if hit is None:
                continue
            if hit.parent == home and ref.startswith("_") and ref.endswith(SUFFIX):
                if hit not in found:
                    found.append(hit)
            todo.append(hit)
    return found


def _resolve(item: str | Path, directories: Sequence[Path] | None) -> Path:
    key = str(item).strip()
    if isinstance(item, Path) or key.endswith(".j2") or "/" in key or os.sep in key:
        path = Path(key).expanduser()
        if not path.is_file():
            raise TemplatePackError(f"template file not found: {path}")
        return path.resolve()
    available = available_templates(directories)
    if key not in available:
        raise TemplatePackError(f"unknown note template {key!r}; not exported")
    return available[key].resolve()


def export_pack(
    ids_or_paths: Sequence[str | Path],
    out_zip: Path,
    *,
    directories: Sequence[Path] | None = None,
) -> list[PackEntry]:
    """Write a template pack: the templates (ids looked up in ``directories``, then
    :func:`~summarize.templates.discovery.template_dirs`; or file paths), the shared
    ``_*.md.j2`` files they use from their own directory, and ``manifest.json``. Every template must be valid."""
    out_zip = Path(out_zip)
    if not ids_or_paths:
        raise TemplatePackError("no templates to export")
    files: dict[str, tuple[bytes, PackEntry]] = {}

    def add(name: str, data: bytes, entry: PackEntry, origin: Path) -> None:
        if name in files and files[name][0] != data:
            raise TemplatePackError(
                f"{name}: two different files with this name ({origin}); export them in "
                "separate packs"
            )
        files[name] = (data, entry)

    for item in ids_or_paths:
        path = _resolve(item, directories)
        if path.name.startswith("_"):
            raise TemplatePackError(f"{path.name}: a shared layout file, not a template")
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise TemplatePackError(f"{path.name}: not UTF-8 text; not exported") from None
        tpl, problems = check_template_text(text, path, directories)
        if tpl is None:
            raise TemplatePackError(
                _problems_message(path.name, problems, "not exported (invalid): ")
            )
        add(path.name, data, PackEntry(path.name, "template", tpl.id, tpl.version, _sha256(data)),
            path)
        search = [path.parent, *template_dirs(directories, quiet=True)]
        for shared in _shared_files_of(path, search):
            sdata = shared.read_bytes()
            sid = shared.name.removesuffix(SUFFIX)
            add(shared.name, sdata, PackEntry(shared.name, "shared", sid, None, _sha256(sdata)),
                shared)
    entries = [files[n][1] for n in sorted(files)]
    manifest = {
        "format": PACK_FORMAT,
        "format_version": PACK_FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        "files": [
            {"name": e.name, "kind": e.kind, "id": e.id, "version": e.version,
             "sha256": e.sha256}
            for e in entries
        ],
    }
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_zip.name}.", suffix=".tmp", dir=out_zip.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
            for name in sorted(files):
                zf.writestr(name, files[name][0])
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out_zip)
    except OSError as exc:
        raise TemplatePackError(f"cannot write {out_zip}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    logger.info("exported %d file(s) to template pack %s", len(entries), out_zip.name)
    return entries


# -- reading a pack ------------------------------------------------------------------------
def _check_name(label: str, name: str, where: str = "") -> None:
    """Refuse anything but a flat ``*.md.j2`` file name (or the manifest)."""
    shown = f"{label}: {name!r}{where}"
    if (
        name.startswith(("/", "\\"))
        or re.match(r"^[A-Za-z]:", name)
        or "\\" in name
        or ".." in name.split("/")
    ):
        raise TemplatePackError(
            f"{shown}: unsafe file name (absolute path or '..': path traversal); "
            "nothing was imported"
        )
    if "/" in name:
        raise TemplatePackError(
            f"{shown}: folders are not allowed in a template pack; nothing was imported"
        )
    if name == MANIFEST and not where:
        return
    if not name.endswith(SUFFIX):
        raise TemplatePackError(
            f"{shown}: not a template file (a pack holds only *{SUFFIX} files and "
            f"{MANIFEST}); nothing was imported"
        )
    if not _PACK_NAME.match(name):
        raise TemplatePackError(f"{shown}: invalid template file name; nothing was imported")


def _read_manifest(label: str, raw: bytes) -> list[PackEntry]:
    def bad(why: str) -> TemplatePackError:
        return TemplatePackError(f"{label}: {MANIFEST} is invalid ({why}); nothing was imported")

    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("not JSON") from None
    if not isinstance(data, dict) or data.get("format") != PACK_FORMAT:
        raise bad(f"not an {PACK_FORMAT}")
    fmt = data.get("format_version")
    if not isinstance(fmt, int) or fmt < 1:
        raise bad("no format_version")
    if fmt > PACK_FORMAT_VERSION:
        raise TemplatePackError(
            f"{label}: made by a newer program (pack format {fmt}); update ambient-scribe"
        )
    rows = data.get("files")
    if not isinstance(rows, list) or not rows:
        raise bad("no files listed")
    out: list[PackEntry] = []
    for row in rows:
        if not isinstance(row, dict):
            raise bad("a file entry is not an object")
        name, sha, version = row.get("name"), row.get("sha256"), row.get("version")
        if not isinstance(name, str):
            raise bad("a file entry has no name")
        _check_name(label, name, f" (listed in {MANIFEST})")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise bad(f"no valid sha256 for {name}")
        kind: Kind = "shared" if name.startswith("_") else "template"
        if version is not None and not isinstance(version, str):
            raise bad(f"the version of {name} is not a string")
        if any(e.name == name for e in out):
            raise bad(f"{name} is listed twice")
        out.append(PackEntry(name, kind, name.removesuffix(SUFFIX), version, sha))
    return out


def _read_pack(zip_path: Path) -> tuple[list[PackEntry], dict[str, str]]:
    """The manifest entries and the text of every file, all checks done."""
    label = zip_path.name
    if not zip_path.is_file():
        raise TemplatePackError(f"template pack not found: {zip_path}")
    corrupt = (
        f"{label}: not a valid template pack (corrupt or not a zip file); nothing was imported"
    )
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise TemplatePackError(corrupt) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_PACK_FILES + 1:
            raise TemplatePackError(f"{label}: too many files ({len(infos)}); nothing was imported")
        names: list[str] = []
        total = 0
        for info in infos:
            _check_name(label, info.filename)
            if info.filename in names:
                raise TemplatePackError(
                    f"{label}: {info.filename!r} is in the zip twice; nothing was imported"
                )
            if info.file_size > MAX_FILE_BYTES:
                raise TemplatePackError(
                    f"{label}: {info.filename!r} is too large; nothing was imported"
                )
            total += info.file_size
            names.append(info.filename)
        if total > MAX_PACK_BYTES:
            raise TemplatePackError(f"{label}: the pack is too large; nothing was imported")
        if MANIFEST not in names:
            raise TemplatePackError(f"{label}: no {MANIFEST} (not a template pack)")

        def read(name: str) -> bytes:
            try:
                with zf.open(name) as f:
                    data = f.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
                raise TemplatePackError(
                    f"{label}: {name!r} cannot be read (corrupt zip); nothing was imported"
                ) from None
            if len(data) > MAX_FILE_BYTES:
                raise TemplatePackError(f"{label}: {name!r} is too large; nothing was imported")
            return data

        entries = _read_manifest(label, read(MANIFEST))
        listed = {e.name for e in entries}
        for name in names:
            if name != MANIFEST and name not in listed:
                raise TemplatePackError(
                    f"{label}: {name!r} is not listed in {MANIFEST}; nothing was imported"
                )
        texts: dict[str, str] = {}
        for e in entries:
            if e.name not in names:
                raise TemplatePackError(
                    f"{label}: {e.name!r} is listed in {MANIFEST} but missing from the zip"
                )
            data = read(e.name)
            if _sha256(data) != e.sha256:
                raise TemplatePackError(
                    f"{label}: {e.name!r} checksum mismatch (the file was changed or damaged); "
                    "nothing was imported"
                )
            try:
                texts[e.name] = _normalize(data.decode("utf-8"))
            except UnicodeDecodeError:
                raise TemplatePackError(
                    f"{label}: {e.name!r} is not UTF-8 text; nothing was imported"
                ) from None
    return entries, texts
