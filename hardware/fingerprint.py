"""The machine fingerprint stored with every benchmark result."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def fingerprint() -> dict[str, Any]:
    import psutil

    # CUDA devices only when CTranslate2 is already loaded (a benchmark ran a model): a
    # first import of its native library late in a process that already holds Qt, torch
    # and matplotlib crashed once in CI (import-order clash of native runtimes)
    ct2 = sys.modules.get("ctranslate2")
    try:
        cuda = ct2.get_cuda_device_count() if ct2 is not None else None
    except Exception:
        cuda = 0
    return {
        "host_id": hashlib.sha256(platform.node().encode()).hexdigest()[:12],
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cuda_devices": cuda,
        "packages": {d: _version(d) for d in ("ctranslate2", "faster-whisper", "av", "numpy", "ambient-scribe")},
    }
