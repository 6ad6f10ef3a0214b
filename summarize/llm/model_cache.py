"""The LLM model cache on disk: where built models live and how a build gets there.

Directory names, the ``scribe-model.json`` info file, the build lock (one process builds a
model at a time), atomic replacement of a finished directory, the disk-space check and the
progress stages every build step reports in.

Cache layout (``<cache>`` is :func:`asr.models.default_cache_dir`)::

    <cache>/llm/<name>-ct2-<quantization>/   model.bin config.json vocabulary.json
                                             tokenizer.json tokenizer_config.json
                                             [chat_template.jinja] [generation_config.json]
                                             hf_config.json scribe-model.json SHA256SUMS
    <cache>/llm/<name>-hf/                   transformers checkpoint (GGUF imports only):
                                             config.json model.safetensors tokenizer files
                                             scribe-model.json SHA256SUMS
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from asr.models import Progress, default_cache_dir
from summarize.errors import LlmError

logger = logging.getLogger(__name__)

ProgressFactory = Callable[[str, int], Progress]
"""``factory(label, total)`` returns ``update(n)``, as in :mod:`asr.models`."""

LLM_SUBDIR = "llm"
INFO_FILE = "scribe-model.json"
QUANTIZATIONS = ("int8", "int8_float16", "float16")
DEFAULT_QUANTIZATION = "int8"

#: Stages reported in steps or tensors rather than bytes (see :func:`stage_unit`).
STEP_STAGES = {
    "reading GGUF": "step",
    "dequantising": "tensor",
    "saving": "step",
    "converting": "step",
}


def stage_unit(label: str) -> str:
    """The unit a progress stage counts in: ``"B"`` for bytes, else steps or tensors."""
    for prefix, unit in STEP_STAGES.items():
        if label.startswith(prefix):
            return unit
    return "B"


def progress_stage(factory: ProgressFactory | None, label: str, total: int) -> Progress:
    """``update(n)`` of the stage ``label`` (a no-op without a factory)."""
    if factory is None:
        return lambda n: None
    return factory(label, max(int(total), 1))


def llm_cache_root(cache_dir: Path | None = None) -> Path:
    """``<cache>/llm``: where embedded and imported LLMs live."""
    return (cache_dir or default_cache_dir()) / LLM_SUBDIR


def ct2_dirname(name: str, quantization: str = DEFAULT_QUANTIZATION) -> str:
    return f"{name}-ct2-{quantization}"


def hf_dirname(name: str) -> str:
    return f"{name}-hf"


def read_info(directory: Path) -> dict[str, Any]:
    """The ``scribe-model.json`` written by the importer ({} if absent or unreadable)."""
    try:
        data = json.loads((directory / INFO_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}



def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("ctranslate2", "transformers", "torch", "gguf"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def write_info(directory: Path, **info: Any) -> None:
    info = {
        **info,
        "converted_with": _versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    (directory / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")



# --------------------------------------------------------------------------- locking and replacing


@contextlib.contextmanager
def cache_lock(root: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<root>/.<name>.lock`` (waits for another process)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fh = (root / f".{name}.lock").open("a+b")
    except OSError as exc:
        raise LlmError(f"cannot write the model cache {root}: {exc.strerror or exc}") from None
    try:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # Windows only
                    break
                except OSError:
                    time.sleep(0.5)
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]  # Windows only
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning("waiting for another scribe process that is building %s", name)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def clean_stale_temps(root: Path, name: str) -> None:
    """Remove temp dirs of ``name`` left by a killed process (call with the lock held)."""
    for stale in root.glob(f".tmp-{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def replace_dir(src: Path, dst: Path) -> None:
    """Move the finished ``src`` to ``dst``, replacing an old ``dst``."""
    old = None
    if dst.exists():
        old = dst.with_name(f".tmp-old-{dst.name}-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_disk(root: Path, need: int, what: str) -> None:
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return
    if free < need:
        raise LlmError(
            f"not enough disk space in {root} to {what}: about {need / 1e9:.1f} GB needed, "
            f"{free / 1e9:.1f} GB free (set SCRIBE_MODEL_CACHE to a larger disk)"
        )
