"""Saving edited note templates and sharing them as template packs (zip).

Used by the template editor (superuser mode) and usable without Qt:

* :func:`validate_text` checks template text that is not saved yet, as if it were a file
  in a template directory (shared files such as ``_base.md.j2`` resolve from there).
* :func:`save_template` validates, bumps the patch version when the text still carries
  the saved version, appends the change note to the ``changes:`` log in the front matter
  and writes the file atomically. An invalid template writes nothing.
* :func:`export_pack` / :func:`import_pack`: a zip with the templates, the shared files
  they use from their own directory and ``manifest.json`` (id, version and SHA-256 per
  file). Import checks everything (names, manifest, checksums, validation of every
  template) before it writes any file.

Templates describe the layout of a note; they never hold patient text. Nothing here logs
template or note text; errors name files, lines and versions only.
"""

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.meta
import yaml

from summarize.errors import TemplateError
from summarize.templates.template import (
    SUFFIX,
    FrontMatterLoader,
    NoteTemplate,
    TemplateProblem,
    available_templates,
    check_template_text,
    front_matter_yaml,
    template_dirs,
)

logger = logging.getLogger(__name__)

PACK_FORMAT = "ambient-scribe-template-pack"
PACK_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_PACK_FILES = 200
MAX_FILE_BYTES = 1_000_000
MAX_PACK_BYTES = 20_000_000
MAX_NOTE_CHARS = 500

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_TEMPLATE_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_PACK_NAME = re.compile(
    r"^(?:_[A-Za-z0-9][A-Za-z0-9_-]*|[a-z][a-z0-9]*(?:-[a-z0-9]+)*)" + re.escape(SUFFIX) + "$"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Kind = Literal["template", "shared"]
Action = Literal["added", "updated", "replaced", "skipped"]


class TemplateInvalidError(TemplateError):
    """The template text has validation problems (kept in :attr:`problems`)."""

    def __init__(self, message: str, problems: Sequence[TemplateProblem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class TemplatePackError(TemplateError):
    """A template pack cannot be exported or imported."""


@dataclass(frozen=True, slots=True)
class SavedTemplate:
    """The result of :func:`save_template`; ``text`` is what was written."""

    path: Path
    id: str
    old_version: str | None
    new_version: str
    text: str


@dataclass(frozen=True, slots=True)
class PackEntry:
    """One file of a template pack, as listed in its manifest."""

    name: str
    kind: Kind
    id: str
    version: str | None
    sha256: str


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


# -- versions -------------------------------------------------------------------------------
def _parse_version(version: str) -> tuple[int, int, int, str | None]:
    m = _SEMVER.match(version.strip()) if isinstance(version, str) else None
    if m is None:
        raise TemplateError(
            f'invalid template version {version!r}: expected "MAJOR.MINOR.PATCH", e.g. "1.0.0"'
        )
    return int(m[1]), int(m[2]), int(m[3]), m[4]


def version_key(version: str) -> tuple[int, int, int, int, str]:
    """A sort key for semantic versions (a pre-release sorts before its release)."""
    major, minor, patch, pre = _parse_version(version)
    return major, minor, patch, 0 if pre else 1, pre or ""


def bump_version(version: str) -> str:
    """The next patch version: ``"1.2.3"`` → ``"1.2.4"``; a pre-release ``"1.3.0-rc.1"``
    → ``"1.3.0"`` (its release). Raises :class:`TemplateError` for an invalid version."""
    major, minor, patch, pre = _parse_version(version)
    return f"{major}.{minor}.{patch}" if pre else f"{major}.{minor}.{patch + 1}"


# -- front matter text ------------------------------------------------------------------------
def _normalize(text: str) -> str:
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _front_matter(text: str) -> tuple[int, int] | None:
    """(start, end) character offsets of the YAML between the '---' lines, or None."""
    if not text.startswith("---"):
        return None
    first = text.find("\n")
    if first < 0 or text[:first].strip() != "---":
        return None
    pos = first + 1
    while pos <= len(text):
        nl = text.find("\n", pos)
        line = text[pos:] if nl < 0 else text[pos:nl]
        if line.rstrip() in ("---", "..."):
            return first + 1, pos
        if nl < 0:
            return None
        pos = nl + 1
    return None


def _front_matter_data(text: str) -> dict[str, Any] | None:
    span = _front_matter(_normalize(text))
    if span is None:
        return None
    try:
        data = front_matter_yaml(_normalize(text)[span[0] : span[1]])
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def template_id_of(text: str) -> str | None:
    """The ``id`` declared in the front matter, when it is a valid template id."""
    data = _front_matter_data(text)
    tid = data.get("id") if data else None
    return tid.strip() if isinstance(tid, str) and _TEMPLATE_ID.match(tid.strip()) else None


def version_of(text: str) -> str | None:
    """The ``version`` declared in the front matter, when it is a valid semantic version."""
    data = _front_matter_data(text)
    v = data.get("version") if data else None
    return v.strip() if isinstance(v, str) and _SEMVER.match(v.strip()) else None


def _file_version(path: Path) -> str | None:
    try:
        return version_of(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return None


def _top_level(text: str, key: str) -> tuple[int, int, yaml.Node | None] | None:
    """Where the top-level field ``key`` is (key start, value end) as text offsets."""
    span = _front_matter(text)
    if span is None:
        return None
    try:
        node = yaml.compose(text[span[0] : span[1]], Loader=FrontMatterLoader)
    except yaml.YAMLError:
        return None
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if getattr(k, "value", None) == key:
            return span[0] + k.start_mark.index, span[0] + v.end_mark.index, v
    return None


def set_version(text: str, version: str) -> str:
    """``text`` with the front matter's ``version`` set to ``version`` (formatting and
    comments elsewhere kept). Raises :class:`TemplateError`."""
    _parse_version(version)
    text = _normalize(text)
    try:
        span = _front_matter(text)
        found = _top_level(text, "version")
    except yaml.YAMLError:
        raise TemplateError("cannot set the version: the front matter is not valid YAML") from None
    if span is None or found is None or found[2] is None:
        raise TemplateError("cannot set the version: the front matter has no 'version' field")
    node = found[2]
    start, end = span[0] + node.start_mark.index, span[0] + node.end_mark.index
    return text[:start] + f'"{version}"' + text[end:]


def _change_line(entry: Mapping[str, str]) -> str:
    return "  - {version: %s, date: %s, note: %s}" % tuple(  # noqa: UP031
        json.dumps(entry[k], ensure_ascii=False) for k in ("version", "date", "note")
    )


def _with_changes(text: str, changes: Sequence[Mapping[str, str]]) -> str:
    """``text`` with the ``changes:`` log replaced by ``changes`` (or added at the end of
    the front matter)."""
    block = "changes:\n" + "\n".join(_change_line(c) for c in changes)
    span = _front_matter(text)
    if span is None:
        raise TemplateError("cannot record the change: the template has no front matter")
    found = _top_level(text, "changes")
    if found is None:
        head = text[: span[1]]
        if not head.endswith("\n"):
            head += "\n"
        return head + block + "\n" + text[span[1] :]
    start, end, _ = found
    region = text[start:end].split("\n")
    tail: list[str] = []
    while len(region) > 1 and (not region[-1].strip() or region[-1].lstrip().startswith("#")):
        tail.insert(0, region.pop())
    rest = "\n".join(tail)
    return text[:start] + block + ("\n" + rest if tail else "") + text[end:]


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
    :func:`template_dirs`; or file paths), the shared ``_*.md.j2`` files they use from
    their own directory, and ``manifest.json``. Every template must be valid."""
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


# -- import ----------------------------------------------------------------------------------
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
