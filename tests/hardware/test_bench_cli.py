"""`scribe bench hardware` and `scribe bench models` as IT runs them.

Runs through `scribe bench` once it is registered in app/cli.py, else through the module's
own entry point (`python -m app.cli_bench_hw`), which has the same one-line error handling.
The integration tests use the real embedded models from the shared cache install.sh filled
(building the LLMs into a fresh cache would take minutes).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_cli import assert_one_line_error, fresh_env
from tests.conftest import CONSULTATIONS, SPEECH

ROOT = Path(__file__).parents[2]
SMALL_LLM = "qwen2.5-coder-0.5b-instruct-q4km"


BENCH = ["-m", "app.cli", "bench"]


def bench(env: dict[str, str], *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *BENCH, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def bench_inprocess(*args: str) -> int:
    from app.cli import main

    return main(["bench", *args])


def one_line_error(capsys: pytest.CaptureFixture[str], code: int, rc: int, pattern: str) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, err
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("scribe: error: "), err
    assert len([ln for ln in lines if ln.startswith("scribe: error")]) == 1
    assert pattern.lower() in lines[-1].lower(), lines[-1]
    return lines[-1]


@pytest.fixture()
def user_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> Path:
    """No user config; the Whisper-only session cache (no LLM is resolved in these tests)."""
    monkeypatch.setenv("SCRIBE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SCRIBE_MODEL_CACHE", str(model_cache))
    for k in ("SCRIBE_ASR__MODEL", "SCRIBE_LLM__MODEL"):
        monkeypatch.delenv(k, raising=False)
    return tmp_path


def _wav(path: Path, seconds: float) -> Path:
    import numpy as np
    import soundfile as sf

    sf.write(path, np.zeros(int(seconds * 16000), dtype=np.float32), 16000, subtype="PCM_16")
    return path


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    d = tmp_path / "dataset"
    d.mkdir()
    shutil.copy(CONSULTATIONS / "allmenn-hypertensjon.yaml", d)
    return d


# --------------------------------------------------------------------------- bad input (fast)


def test_models_dataset_missing(user_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = bench_inprocess("models", "--dataset", str(user_env / "nowhere"), "--no-audio")
    one_line_error(capsys, 2, rc, "does not exist")


def test_models_dataset_empty_or_a_file(user_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = user_env / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    one_line_error(capsys, 2, bench_inprocess("models", "--dataset", str(empty)), "no consultations (*.yaml)")
    one_line_error(capsys, 2, bench_inprocess("models", "--dataset", str(empty / "notes.txt")), "is not a folder")


@pytest.mark.parametrize(("content", "pattern"), [
    ("turns: [\n  - text: 'a\n", "bad.yaml is not valid yaml"),
    ("- just\n- a list\n", "bad.yaml is not a consultation"),
    ("id: x\nspecialty: allmennmedisin\n", "bad.yaml is not a consultation: 'turns'"),
    ("turns:\n  - speaker: lege\n    kind: klinisk\n", "bad.yaml: turn 1 has no 'text'"),
    ("turns:\n  - speaker: lege\n    kind: prat\n    text: Hei\n", "bad.yaml: turn 1 has kind 'prat'"),
    ("turns:\n  - {kind: klinisk, text: Hei}\nfacts:\n  - {text: x}\n", "bad.yaml: 'facts'"),
    ("specialty: hjertekirurgi-x\nturns:\n  - {kind: klinisk, text: Hei}\n", "bad.yaml: specialty 'hjertekirurgi-x'"),
])
def test_models_malformed_consultation_names_the_file(user_env: Path, dataset: Path, content: str, pattern: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (dataset / "bad.yaml").write_text(content, encoding="utf-8")
    one_line_error(capsys, 2, bench_inprocess("models", "--dataset", str(dataset), "--no-audio"), pattern)


def test_models_malformed_turn_times(user_env: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (dataset / "allmenn-hypertensjon.turns.json").write_text("[{\"start\": 0}]")
    one_line_error(capsys, 2, bench_inprocess("models", "--dataset", str(dataset)),
                   "allmenn-hypertensjon.turns.json is malformed")


def test_models_unknown_model(user_env: Path, dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = bench_inprocess("models", "--dataset", str(dataset), "--no-audio", "--llm", "no-such-model")
    one_line_error(capsys, 5, rc, "unknown LLM model no-such-model")
    shutil.copy(CONSULTATIONS / "allmenn-hypertensjon.flac", dataset)
    shutil.copy(CONSULTATIONS / "allmenn-hypertensjon.turns.json", dataset)
    rc = bench_inprocess("models", "--dataset", str(dataset), "--llm", SMALL_LLM, "--asr-model",
                         str(user_env / "no-whisper"))
    one_line_error(capsys, 4, rc, "does not exist")


def test_hardware_bad_clip(user_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(capsys, 2, bench_inprocess("hardware", "--clip", str(user_env / "missing.wav")),
                   "audio file not found")
    short = _wav(user_env / "short.wav", 4)
    line = one_line_error(capsys, 2, bench_inprocess("hardware", "--clip", str(short)), "only 4.0 s long")
    assert "--clip" in line and "30 s" in line
    one_line_error(capsys, 2, bench_inprocess("hardware", "--clip-text", str(short)), "--clip-text goes with --clip")
    ok = _wav(user_env / "ok.wav", 31)
    one_line_error(capsys, 2, bench_inprocess("hardware", "--clip", str(ok), "--clip-text", str(user_env / "x.txt")),
                   "clip text not found")


def test_hardware_without_a_clip_tells_it_to_pass_one(user_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from hardware import model_bench

    monkeypatch.setattr(model_bench, "default_clip", lambda: None)  # a package without its demo recording
    line = one_line_error(capsys, 2, bench_inprocess("hardware"), "no test recording found")
    assert "--clip FILE" in line and "Norwegian speech" in line


def test_hardware_unknown_models_and_bad_output(user_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = str(SPEECH / "king.mp3")
    one_line_error(capsys, 4, bench_inprocess("hardware", "--clip", clip, "--asr-model", str(user_env / "nope")),
                   "does not exist")
    one_line_error(capsys, 5, bench_inprocess("hardware", "--clip", clip, "--llm", "no-such-model"),
                   "unknown LLM model no-such-model")
    one_line_error(capsys, 2, bench_inprocess("hardware", "--json", str(user_env / "no" / "dir" / "hw.json")),
                   "does not exist")


def test_subprocess_error_is_one_line(tmp_path: Path, model_cache: Path) -> None:
    p = bench(fresh_env(tmp_path, model_cache), "models", "--dataset", str(tmp_path / "nowhere"), timeout=120)
    assert_one_line_error(p, 2, "does not exist")


# --------------------------------------------------------------------------- real runs


def _self_contained(html: str) -> None:
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", html, re.I)
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()


@pytest.mark.integration
def test_bench_hardware_quick_real_run(tmp_path: Path) -> None:
    from asr.models import default_cache_dir
    from hardware.recommend import check_consistency

    out_json, out_html = tmp_path / "out" / "hw.json", tmp_path / "out" / "hw.html"
    out_json.parent.mkdir()
    p = bench(fresh_env(tmp_path, default_cache_dir()), "hardware", "--quick", "--json", str(out_json),
              "--html", str(out_html))
    assert p.returncode == 0, p.stderr
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert doc["kind"] == "hardware" and doc["fingerprint"]["cpu"]
    assert [s["heading"] for s in doc["sections"]] == ["Maskin", "ASR", "LLM", "Anbefaling"]
    data = {k: v for s in doc["sections"] for k, v in (s["data"] or {}).items()}
    probe = data["probe"]
    assert probe["cpu"]["cores_physical"] >= 1 and probe["memory"]["total_gb"] > 0
    assert "cpu" in probe["compute_types"]

    asr = data["asr_results"]
    assert len(asr) == 1 + len(probe["cuda"][:1])  # --quick: one compute type per device
    for r in asr:
        assert r["error"] is None, r
        assert {"label", "model", "device", "compute_type", "load_s", "rtf", "wer", "size_rank", "peak_rss_mb",
                "model_rss_mb", "peak_vram_mb"} <= r.keys()
        assert 0 < r["rtf"] < 10 and r["peak_rss_mb"] > 50
        assert r["wer"] is None  # a 30 s cut of the recording: its text cannot be aligned
    assert data["clip"]["duration_s"] == pytest.approx(30, abs=0.2)

    llm = data["llm_results"]
    assert {r["model"] for r in llm} >= {SMALL_LLM, "qwen2.5-coder-1.5b-instruct-q4km"}
    for r in llm:
        assert r["error"] is None, r
        for k in ("load_s", "prefill_tokens_per_s", "gen_tokens_per_s", "per_call_s", "peak_rss_mb", "params_b"):
            assert isinstance(r[k], int | float) and r[k] > 0, (k, r)
        proj = data["projections"][r["label"]]
        assert proj["full_draft_s"] > proj["stop_to_draft_s"] > 0
    assert data["projected"] is True
    big = next(r for r in llm if "1.5b" in r["model"])
    small = next(r for r in llm if r["model"] == SMALL_LLM)
    assert big["params_b"] > small["params_b"]

    rec = data["recommendation"]
    assert {"asr", "llm", "too_weak", "statement", "reasons", "llm_projections"} <= rec.keys()
    assert doc["verdict"] == rec["statement"] and doc["summary"] == rec["reasons"]
    assert data["limits"]["rtf_max"] == 0.5 and data["limits"]["stop_to_draft_max_s"] == 30
    assert check_consistency(doc) == []
    assert rec["statement"] in p.stdout

    html = out_html.read_text(encoding="utf-8")
    _self_contained(html)
    assert html.count('src="data:image/png;base64,') >= 3  # RTF, tokens/s, stop → draft
    for heading in ("Maskin", "ASR", "LLM", "Anbefaling"):
        assert f">{heading}<" in html
    assert "PROJEKSJONER" in html


@pytest.mark.integration
def test_bench_models_on_one_consultation(tmp_path: Path, dataset: Path) -> None:
    from asr.models import default_cache_dir

    out_json, out_html = tmp_path / "models.json", tmp_path / "models.html"
    p = bench(fresh_env(tmp_path, default_cache_dir()), "models", "--dataset", str(dataset), "--no-audio",
              "--llm", SMALL_LLM, "--json", str(out_json), "--html", str(out_html))
    assert p.returncode == 0, p.stderr
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert doc["kind"] == "models" and doc["verdict"].startswith("Highest fact recall:")
    summary = doc["sections"][0]
    assert summary["heading"] == "Sammenligning"
    assert [pair["llm"] for pair in summary["data"]["pairs"]] == [SMALL_LLM]
    row = summary["table"][0]
    for k in ("Småprat-F1", "Faktadekning", "Lekkasje", "Udokumenterte", "ROUGE-L", "tokens/s"):
        assert row[k] is not None, k
    record = doc["sections"][1]["data"]["record"]
    case = record["cases"][0]
    assert case["id"] == "allmenn-hypertensjon"
    assert {"precision", "recall", "f1"} <= case["smalltalk"].keys()
    for k in ("fact_recall", "leakage", "unsupported_claims", "rouge_l", "tokens_per_s", "draft_s"):
        assert k in case["oracle"], k
    assert 0 <= case["oracle"]["fact_recall"] <= 1 and case["oracle"]["tokens_per_s"] > 0
    assert "audio" not in case
    # numbers only: no consultation text in the reports
    turns = yaml.safe_load((dataset / "allmenn-hypertensjon.yaml").read_text(encoding="utf-8"))["turns"]
    text = out_json.read_text(encoding="utf-8") + out_html.read_text(encoding="utf-8")
    for t in turns:
        words = t["text"].split()
        for i in range(len(words) - 4):
            assert " ".join(words[i:i + 5]) not in text
    _self_contained(out_html.read_text(encoding="utf-8"))
    assert SMALL_LLM in p.stdout
