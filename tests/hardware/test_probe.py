"""hardware.probe: the real machine, and parsing of /proc/cpuinfo and nvidia-smi output."""

from __future__ import annotations

import json
import platform

import pytest

from hardware import probe as hp

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 106
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
stepping\t: 6
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov sse sse2 ssse3 fma cx16 \
sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand avx2 bmi1 bmi2 avx512f avx512dq avx512cd avx512bw \
avx512vl avx512_vnni
bogomips\t: 4000.00

processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
flags\t\t: fpu sse sse2
"""

OLD_X86_CPUINFO = """\
processor\t: 0
model name\t: Intel(R) Core(TM)2 Duo CPU     E8400  @ 3.00GHz
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 sse4_1
"""

ARM_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

Hardware\t: Ampere Altra
"""


def test_probe_on_this_machine_is_sane() -> None:
    p = hp.probe()
    json.dumps(p)  # plain JSON types only
    cpu = p["cpu"]
    assert cpu["model"]
    assert cpu["cores_physical"] >= 1
    assert cpu["threads_logical"] >= cpu["cores_physical"]
    assert 1 <= cpu["threads_usable"] <= cpu["threads_logical"]
    assert p["memory"]["total_gb"] > 0
    assert 0 < p["memory"]["available_gb"] <= p["memory"]["total_gb"]
    assert p["os"]["python"] == platform.python_version()
    assert p["os"]["system"]
    assert "cpu" in p["compute_types"]
    assert p["ctranslate2"]
    import ctranslate2

    assert len(p["cuda"]) == ctranslate2.get_cuda_device_count()
    assert set(p["compute_types"]) == {"cpu", *(f"cuda:{d['index']}" for d in p["cuda"])}
    for d in p["cuda"]:
        assert d["memory_source"] in ("torch", "nvidia-smi", "unknown")
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert "int8" in p["compute_types"]["cpu"]
        assert "float32" in p["compute_types"]["cpu"]
        assert cpu["instruction_sets"]["sse4_2"] is True
        assert "avx2" in cpu["instruction_sets"]
        assert cpu["instruction_sets_present"] == sorted(k for k, v in cpu["instruction_sets"].items() if v)


def test_parse_x86_cpuinfo_with_avx512() -> None:
    parsed = hp.parse_cpuinfo(X86_CPUINFO)
    assert parsed["model"] == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert {"avx2", "avx512f", "avx512_vnni", "fma", "f16c"} <= parsed["flags"]  # the first flags line only
    sets = hp.instruction_sets(parsed["flags"], "x86_64")
    assert sets["avx"] and sets["avx2"] and sets["fma"] and sets["f16c"]
    assert sets["avx512f"] and sets["avx512bw"] and sets["avx512_vnni"]
    assert sets["avx_vnni"] is False and sets["amx_int8"] is False
    assert "neon" not in sets


def test_parse_old_x86_cpuinfo_without_avx() -> None:
    parsed = hp.parse_cpuinfo(OLD_X86_CPUINFO)
    sets = hp.instruction_sets(parsed["flags"], "x86_64")
    assert not sets["avx"] and not sets["avx2"] and not sets["avx512f"]


def test_parse_arm_cpuinfo_with_asimd() -> None:
    parsed = hp.parse_cpuinfo(ARM_CPUINFO)
    assert parsed["model"] == "Ampere Altra"
    sets = hp.instruction_sets(parsed["flags"], "aarch64")
    assert sets["neon"] is True  # "asimd" is NEON on AArch64
    assert sets["asimddp"] is True and sets["fphp"] is True
    assert sets["sve"] is False
    assert "avx2" not in sets
    # the family is recognised from the flags alone too
    assert hp.instruction_sets(parsed["flags"])["neon"] is True
    assert "avx2" in hp.instruction_sets(hp.parse_cpuinfo(X86_CPUINFO)["flags"])


def test_parse_empty_or_garbage_cpuinfo() -> None:
    assert hp.parse_cpuinfo("") == {"model": None, "flags": set()}
    assert hp.parse_cpuinfo("no colons here\n\n:::\n") == {"model": None, "flags": set()}


def test_cpu_falls_back_to_numpy_feature_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hp, "parse_cpuinfo", lambda text: {"model": None, "flags": set()})
    cpu = hp._cpu()
    assert cpu["model"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert cpu["instruction_sets_source"] == "numpy"
        assert cpu["instruction_sets"]["sse4_2"] is True


def test_parse_nvidia_smi() -> None:
    text = "NVIDIA RTX A4000, 16376, 15802\nNVIDIA GeForce RTX 3060, 12288, [N/A]\n\n"
    assert hp.parse_nvidia_smi(text) == [
        {"name": "NVIDIA RTX A4000", "memory_total_mb": 16376.0, "memory_free_mb": 15802.0},
        {"name": "NVIDIA GeForce RTX 3060", "memory_total_mb": 12288.0, "memory_free_mb": None},
    ]


def test_cuda_memory_from_nvidia_smi_when_torch_sees_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hp, "_torch_cuda", lambda: None)
    monkeypatch.setattr(hp, "_run", lambda cmd, timeout=5.0: "NVIDIA L4, 23034, 22000\n")
    assert hp._cuda(1) == [{"index": 0, "name": "NVIDIA L4", "memory_total_mb": 23034.0,
                            "memory_free_mb": 22000.0, "memory_source": "nvidia-smi"}]
    monkeypatch.setattr(hp, "_run", lambda cmd, timeout=5.0: None)  # no nvidia-smi on the PATH
    assert hp._cuda(1)[0]["memory_source"] == "unknown"
    assert hp._cuda(0) == []


def test_probe_table_rows() -> None:
    rows = hp.probe_table(hp.probe())
    keys = [r["Egenskap"] for r in rows]
    assert {"CPU", "Fysiske kjerner", "RAM totalt (GB)", "Instruksjonssett", "Compute types cpu"} <= set(keys)
