"""What this machine has: CPU, instruction sets, memory, OS, CUDA devices, and the
CTranslate2 compute types each device supports.

:func:`probe` returns a plain, JSON-ready dict. Every part is best effort: a missing
``/proc/cpuinfo``, ``sysctl``, ``nvidia-smi`` or torch gives ``None`` (or an empty list)
for that part, never an exception. No Qt, nothing from ``app/``.

Instruction sets come from the ``flags`` line of ``/proc/cpuinfo`` on x86 Linux, the
``Features`` line on ARM Linux, ``sysctl`` on macOS, and numpy's runtime CPU-feature
detection elsewhere (Windows). CTranslate2's int8 kernels on x86 want AVX2 (AVX-512 and
VNNI make them faster); on ARM they use NEON.

CUDA devices are counted by CTranslate2 (what the app will use). Their name and free /
total memory come from torch when torch sees CUDA, else from ``nvidia-smi`` when it is
on the PATH, else they are reported as unknown.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Reported instruction sets: our name -> the flag names that mean it, on x86 (/proc/cpuinfo
# flags, macOS sysctl, numpy) and ARM (/proc/cpuinfo Features).
X86_SETS: dict[str, tuple[str, ...]] = {
    "sse4_2": ("sse4_2", "sse4.2", "sse42"),
    "avx": ("avx", "avx1.0"),
    "avx2": ("avx2",),
    "fma": ("fma", "fma3"),
    "f16c": ("f16c",),
    "avx512f": ("avx512f",),
    "avx512bw": ("avx512bw",),
    "avx512_vnni": ("avx512_vnni", "avx512vnni"),
    "avx_vnni": ("avx_vnni", "avxvnni"),
    "amx_int8": ("amx_int8",),
}
ARM_SETS: dict[str, tuple[str, ...]] = {
    "neon": ("neon", "asimd"),  # AArch64 Linux calls NEON "asimd"
    "asimddp": ("asimddp", "dotprod"),  # int8 dot product
    "fphp": ("fphp", "asimdhp"),  # half-precision arithmetic
    "sve": ("sve",),
    "i8mm": ("i8mm",),
}

CPU_COMPUTE_ORDER = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "float32", "float16",
                     "bfloat16")


def _is_arm(machine: str) -> bool:
    m = machine.lower()
    return m.startswith(("arm", "aarch64")) or m == "arm64"


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """``/proc/cpuinfo`` text → ``{"model": str | None, "flags": set[str]}``.

    The model is the first ``model name`` (x86), else ``Model`` / ``Hardware`` / ``CPU
    part`` (ARM); the flags are the first ``flags`` (x86) or ``Features`` (ARM) line,
    lower-cased.
    """
    model: str | None = None
    arm_model: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if key == "model name" and model is None and value:
            model = value
        elif key in ("model", "hardware") and arm_model is None and value and not value.isdigit():
            arm_model = value
        elif key in ("flags", "features") and not flags:
            flags = {f.lower() for f in value.split()}
    return {"model": model or arm_model, "flags": flags}


def instruction_sets(flags: set[str], machine: str | None = None) -> dict[str, bool]:
    """The reported instruction sets present in ``flags`` (x86 or ARM names by ``machine``;
    if unknown, by which family's flags appear)."""
    low = {f.lower() for f in flags}
    arm = _is_arm(machine) if machine else bool(low & {"asimd", "neon", "fp"}) and "sse2" not in low
    table = ARM_SETS if arm else X86_SETS
    out = {name: any(n in low for n in names) for name, names in table.items()}
    if arm and machine and machine.lower() in ("aarch64", "arm64"):
        out["neon"] = True  # NEON is mandatory on AArch64
    return out


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        p = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout if p.returncode == 0 else None


def _numpy_flags() -> set[str]:
    """numpy's runtime CPU-feature detection (works on Windows and macOS too)."""
    try:
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as feats
        except ImportError:  # numpy < 2
            from numpy.core._multiarray_umath import __cpu_features__ as feats  # type: ignore[no-redef]
    except Exception:
        return set()
    return {str(k).lower() for k, v in feats.items() if v}


def _cpu() -> dict[str, Any]:
    machine = platform.machine()
    model: str | None = None
    flags: set[str] = set()
    source = None
    cpuinfo = Path("/proc/cpuinfo")
    try:
        if cpuinfo.is_file():
            parsed = parse_cpuinfo(cpuinfo.read_text(errors="replace"))
            model, flags = parsed["model"], parsed["flags"]
            source = "/proc/cpuinfo" if flags else None
    except OSError:
        pass
    if sys.platform == "darwin":
        model = model or (_run(["sysctl", "-n", "machdep.cpu.brand_string"]) or "").strip() or None
        if not flags:
            feats = " ".join(
                (_run(["sysctl", "-n", key]) or "")
                for key in ("machdep.cpu.features", "machdep.cpu.leaf7_features")
            )
            flags = {f.lower() for f in feats.split()}
            if flags:
                source = "sysctl"
    if not flags:
        flags = _numpy_flags()
        source = "numpy" if flags else None
    if not model:
        try:
            from hardware.fingerprint import cpu_model

            model = cpu_model() or None
        except Exception:
            model = platform.processor() or machine or None
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
        freq = psutil.cpu_freq()
        max_mhz = round(freq.max) if freq and freq.max else None
    except Exception:
        physical, max_mhz = None, None
    logical = os.cpu_count()
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        usable = logical
    sets = instruction_sets(flags, machine) if flags else {}
    return {
        "model": model,
        "architecture": machine or None,
        "cores_physical": physical or logical,
        "threads_logical": logical,
        "threads_usable": usable,
        "max_mhz": max_mhz,
        "instruction_sets": sets,
        "instruction_sets_present": sorted(k for k, v in sets.items() if v),
        "instruction_sets_source": source,
    }


def _memory() -> dict[str, Any]:
    try:
        import psutil

        vm = psutil.virtual_memory()
        return {"total_gb": round(vm.total / 2**30, 2), "available_gb": round(vm.available / 2**30, 2)}
    except Exception:
        return {"total_gb": None, "available_gb": None}


def _os() -> dict[str, Any]:
    return {
        "system": platform.system() or None,
        "release": platform.release() or None,
        "version": platform.version() or None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def _torch_cuda() -> Any | None:
    """torch's CUDA module if torch is installed and sees a GPU (else None)."""
    try:
        import torch

        return torch.cuda if torch.cuda.is_available() else None
    except Exception:
        return None


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """``nvidia-smi --query-gpu=name,memory.total,memory.free --format=csv,noheader,nounits``
    output → ``[{"name", "memory_total_mb", "memory_free_mb"}]``."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0]:
            continue

        def num(s: str) -> float | None:
            try:
                return float(s)
            except ValueError:
                return None

        out.append({"name": parts[0], "memory_total_mb": num(parts[1]), "memory_free_mb": num(parts[2])})
    return out


def _cuda(count: int) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = [
        {"index": i, "name": None, "memory_total_mb": None, "memory_free_mb": None, "memory_source": None}
        for i in range(count)
    ]
    if not count:
        return devices
    tc = _torch_cuda()
    if tc is not None:
        for d in devices:
            try:
                free, total = tc.mem_get_info(d["index"])
                d.update(name=tc.get_device_name(d["index"]), memory_total_mb=round(total / 2**20),
                         memory_free_mb=round(free / 2**20), memory_source="torch")
            except Exception as exc:
                logger.debug("torch could not query CUDA device %s: %s", d["index"], exc)
    if any(d["memory_source"] is None for d in devices):
        text = _run(["nvidia-smi", "--query-gpu=name,memory.total,memory.free",
                     "--format=csv,noheader,nounits"])
        if text:
            for d, row in zip(devices, parse_nvidia_smi(text), strict=False):
                if d["memory_source"] is None:
                    d.update(row, memory_source="nvidia-smi")
    for d in devices:
        if d["memory_source"] is None:
            d["memory_source"] = "unknown"
    return devices


def _sorted_types(types: set[str]) -> list[str]:
    order = {t: i for i, t in enumerate(CPU_COMPUTE_ORDER)}
    return sorted(types, key=lambda t: (order.get(t, len(order)), t))


def compute_types() -> tuple[int, dict[str, list[str]], str | None]:
    """(CUDA device count, ``{"cpu": [...], "cuda:0": [...]}``, CTranslate2 version)."""
    try:
        import ctranslate2
    except Exception as exc:
        logger.warning("ctranslate2 is not importable: %s", exc)
        return 0, {"cpu": []}, None
    types: dict[str, list[str]] = {}
    try:
        types["cpu"] = _sorted_types(set(ctranslate2.get_supported_compute_types("cpu")))
    except Exception:
        types["cpu"] = []
    try:
        count = int(ctranslate2.get_cuda_device_count())
    except Exception:
        count = 0
    for i in range(count):
        try:
            types[f"cuda:{i}"] = _sorted_types(set(ctranslate2.get_supported_compute_types("cuda", i)))
        except Exception:
            types[f"cuda:{i}"] = []
    return count, types, getattr(ctranslate2, "__version__", None)


def probe() -> dict[str, Any]:
    """The machine: ``cpu``, ``memory``, ``os``, ``cuda`` (devices), ``compute_types``
    (per device), ``ctranslate2`` (version)."""
    count, types, version = compute_types()
    return {
        "cpu": _cpu(),
        "memory": _memory(),
        "os": _os(),
        "cuda": _cuda(count),
        "compute_types": types,
        "ctranslate2": version,
    }


def probe_table(p: dict[str, Any]) -> list[dict[str, Any]]:
    """The probe as rows of (Egenskap, Verdi) for a report."""
    cpu, mem, osd = p["cpu"], p["memory"], p["os"]
    rows: list[tuple[str, Any]] = [
        ("CPU", cpu.get("model")),
        ("Arkitektur", cpu.get("architecture")),
        ("Fysiske kjerner", cpu.get("cores_physical")),
        ("Logiske tråder", cpu.get("threads_logical")),
        ("Tråder tilgjengelig for prosessen", cpu.get("threads_usable")),
        ("Instruksjonssett", ", ".join(cpu.get("instruction_sets_present") or []) or "ukjent"),
        ("RAM totalt (GB)", mem.get("total_gb")),
        ("RAM ledig (GB)", mem.get("available_gb")),
        ("OS", osd.get("platform")),
        ("Python", osd.get("python")),
        ("CTranslate2", p.get("ctranslate2")),
        ("CUDA-enheter", len(p.get("cuda") or [])),
    ]
    for d in p.get("cuda") or []:
        mem_text = (f"{d['memory_free_mb']:.0f} av {d['memory_total_mb']:.0f} MB ledig"
                    if d.get("memory_total_mb") is not None and d.get("memory_free_mb") is not None
                    else "minne ukjent")
        rows.append((f"cuda:{d['index']}", f"{d.get('name') or 'ukjent GPU'}, {mem_text}"))
    for dev, types in (p.get("compute_types") or {}).items():
        rows.append((f"Compute types {dev}", ", ".join(types) or "ingen"))
    return [{"Egenskap": k, "Verdi": v} for k, v in rows]
