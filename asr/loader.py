"""Load a CTranslate2 Whisper model on the chosen device, once per process."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asr.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True, slots=True)
class ComputeChoice:
    device: str
    compute_type: str


def cuda_available() -> bool:
    import ctranslate2

    try:
        return ctranslate2.get_cuda_device_count() > 0
    except Exception:  # no CUDA runtime at all
        return False


def choose_compute(device: str = "auto", compute_type: str | None = None) -> ComputeChoice:
    """CPU int8 by default; on CUDA int8_float16 (or float16 if the GPU lacks int8)."""
    import ctranslate2

    if device not in DEVICES:
        raise ConfigError(f"unknown device {device!r}: use auto, cpu or cuda")
    has_cuda = cuda_available()
    if device == "cuda" and not has_cuda:
        raise ConfigError("--device cuda was requested but no CUDA GPU is available: use --device cpu")
    resolved = "cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu"
    supported = set(ctranslate2.get_supported_compute_types(resolved))
    if compute_type in (None, "", "auto", "default"):
        preferred = ("int8_float16", "float16", "int8") if resolved == "cuda" else ("int8", "float32")
        compute_type = next(c for c in preferred if c in supported)
    elif compute_type not in supported:
        raise ConfigError(
            f"compute type {compute_type!r} is not supported on {resolved}: "
            f"use one of {', '.join(sorted(supported))}"
        )
    return ComputeChoice(resolved, compute_type)


_lock = threading.Lock()
_loaded: dict[tuple[str, str, str, int], WhisperModel] = {}


def load_whisper(directory: Path, choice: ComputeChoice, cpu_threads: int = 0) -> WhisperModel:
    """Load (or reuse) a model; the load time is logged."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub
    from faster_whisper import WhisperModel

    key = (str(directory), choice.device, choice.compute_type, cpu_threads)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        t0 = time.perf_counter()
        try:
            model = WhisperModel(
                str(directory),
                device=choice.device,
                compute_type=choice.compute_type,
                cpu_threads=cpu_threads or (os.cpu_count() or 1),
                local_files_only=True,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"cannot load the Whisper model in {directory}: {first} "
                "(is it a complete CTranslate2 Whisper conversion?)"
            ) from None
        logger.info(
            "loaded %s on %s/%s in %.2f s", directory.name, choice.device, choice.compute_type,
            time.perf_counter() - t0,
        )
        _loaded[key] = model
        return model
