"""``SHA256SUMS`` manifests of built model directories, and the stamp that spares a re-hash.

Every directory a build writes gets a manifest (``sha256sum`` format); later starts check it
cheaply through a stamp of the files' sizes and mtimes, re-hashing only what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from asr.models import MANIFEST, sha256_file
from summarize.errors import LlmError
from summarize.llm.model_cache import ProgressFactory, progress_stage

logger = logging.getLogger(__name__)

STAMP = ".scribe-llm-verified.json"


def _manifest_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, STAMP) and not p.name.startswith(".")
    )


def write_manifest(directory: Path, progress_factory: ProgressFactory | None = None) -> None:
    """Write ``SHA256SUMS`` (``sha256sum`` format) over every file in ``directory`` and a
    stamp so the next :func:`verify_manifest_cached` need not re-hash."""
    files = _manifest_files(directory)
    update = progress_stage(
        progress_factory, f"checksumming {directory.name}", sum(p.stat().st_size for p in files)
    )
    lines = []
    for path in files:
        lines.append(f"{sha256_file(path, update)}  {path.relative_to(directory).as_posix()}")
    (directory / MANIFEST).write_text("\n".join(lines) + "\n")
    _write_stamp(directory)


def _stamp_key(directory: Path) -> dict[str, Any]:
    manifest = directory / MANIFEST
    text = manifest.read_text()
    files = {}
    for line in text.splitlines():
        _, _, name = line.strip().partition("  ")
        if name:
            st = (directory / name.lstrip("*")).stat()
            files[name.lstrip("*")] = [st.st_size, st.st_mtime_ns]
    return {"manifest": hashlib.sha256(text.encode()).hexdigest(), "files": files}


def _write_stamp(directory: Path) -> None:
    try:
        (directory / STAMP).write_text(json.dumps(_stamp_key(directory)))
    except OSError as exc:  # only costs a re-hash next time
        logger.warning("cannot write %s: %s", directory / STAMP, exc)


def verify_manifest_cached(
    directory: Path,
    *,
    fix: str,
    progress_factory: ProgressFactory | None = None,
    full: bool = False,
) -> bool:
    """Check ``directory`` against its ``SHA256SUMS``; re-hash only files whose size or mtime
    changed since the last check (all of them with ``full``). Returns False if there is no
    manifest; raises :class:`LlmError` (naming the file and ``fix``) on a mismatch."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return False
    entries: list[tuple[str, str]] = []
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, _, name = line.strip().partition("  ")
            entries.append((digest.lower(), name.lstrip("*")))
    for _, name in entries:
        if not (directory / name).is_file():
            raise LlmError(f"{directory / name} listed in {manifest} is missing: {fix}")
    if not full:
        try:
            if json.loads((directory / STAMP).read_text()) == _stamp_key(directory):
                return True
        except (OSError, ValueError):
            pass
    total = sum((directory / name).stat().st_size for _, name in entries)
    update = progress_stage(progress_factory, f"verifying {directory.name}", total)
    for digest, name in entries:
        actual = sha256_file(directory / name, update)
        if actual != digest:
            raise LlmError(
                f"checksum mismatch for {directory / name} (sha256 {actual[:12]}…, expected "
                f"{digest[:12]}…): {fix}"
            )
    _write_stamp(directory)
    return True
