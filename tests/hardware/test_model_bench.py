"""The recommendation on synthetic numbers, the drafting-time projection, the consistency
check, and the model-bench helpers that need no model."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from asr.errors import ConfigError
from hardware import model_bench as mb
from hardware.recommend import (
    TEN_MINUTE,
    asr_rank,
    check_consistency,
    project_ten_minute,
    recommend,
)


def asr(label: str, rtf: float | None, wer: float | None = None, rank: float = 2.0, device: str = "cpu",
        error: str | None = None) -> dict:
    return {"label": label, "model": label.split()[0], "device": device, "compute_type": label.split("/")[-1],
            "rtf": rtf, "wer": wer, "size_rank": rank, "error": error}


def llm(label: str, per_call: float | None, params: float | None, device: str = "cpu",
        error: str | None = None) -> dict:
    return {"label": label, "model": label.split()[0], "device": device, "compute_type": "int8",
            "per_call_s": per_call, "warmup_s": [per_call * 2, per_call * 1.5] if per_call else [],
            "params_b": params, "error": error, "gen_tokens_per_s": 5.0, "prefill_tokens_per_s": 100.0}


BASE = asr("whisper-base cpu/int8", 0.30, 0.44, 2.0)
SMALL = asr("whisper-small cpu/int8", 0.45, 0.35, 3.0)
MEDIUM = asr("whisper-medium cpu/int8", 0.90, 0.25, 4.0)
Q05 = llm("qwen-0.5b cpu/int8", 1.0, 0.5)
Q15 = llm("qwen-1.5b cpu/int8", 3.0, 1.5)
Q7 = llm("qwen-7b cpu/int8", 30.0, 7.0)


# --------------------------------------------------------------------------- recommend


def test_picks_the_most_accurate_within_the_limits() -> None:
    rec = recommend([BASE, SMALL, MEDIUM], [Q05, Q15, Q7])
    assert rec.asr["label"] == "whisper-small cpu/int8"  # medium is more accurate but RTF 0.9 > 0.5
    assert rec.llm["label"] == "qwen-1.5b cpu/int8"  # 7B is larger but too slow
    assert not rec.too_weak and not rec.asr_too_weak and not rec.llm_too_weak
    assert rec.statement.startswith("Recommended on this machine: ASR whisper-small cpu/int8")
    assert "qwen-1.5b" in rec.statement
    text = "\n".join(rec.reasons)
    assert "whisper-medium cpu/int8 is too slow: streaming RTF 0.90 > 0.5" in text
    assert "qwen-7b cpu/int8 is too slow" in text
    assert "projections from measured per-call times" in text
    assert set(rec.llm_projections) == {Q05["label"], Q15["label"], Q7["label"]}
    # the projection uses the chosen ASR's RTF as its share of the CPU
    assert rec.llm_projections[Q15["label"]]["asr_rtf"] == pytest.approx(0.45)
    assert rec.llm_projections[Q7["label"]]["stop_to_draft_s"] > 30


def test_lowest_wer_wins_even_from_a_smaller_model() -> None:
    small_bad = asr("whisper-small cpu/int8", 0.45, 0.50, 3.0)
    assert recommend([BASE, small_bad], []).asr["label"] == BASE["label"]


def test_ranking_by_model_size_when_wer_is_not_measured() -> None:
    rec = recommend([asr("whisper-base cpu/int8", 0.3), asr("nb-whisper-small cpu/int8", 0.48, rank=3.5),
                     asr("whisper-small cpu/int8", 0.4, rank=3.0)], [])
    assert rec.asr["label"] == "nb-whisper-small cpu/int8"
    assert "WER not measured" in rec.reasons[0]
    # one configuration without WER: all are ranked by size
    rec = recommend([BASE, asr("whisper-small cpu/int8", 0.4, None, 3.0)], [])
    assert rec.asr["label"] == "whisper-small cpu/int8"


def test_ties() -> None:
    int8 = asr("whisper-small cpu/int8", 0.40, 0.35, 3.0)
    fp32 = asr("whisper-small cpu/float32", 0.49, 0.35, 3.0)
    assert recommend([fp32, int8], []).asr["label"] == int8["label"]  # same WER, same model: the faster
    other = asr("whisper-base cpu/int8", 0.20, 0.35, 2.0)
    assert recommend([other, fp32], []).asr["label"] == fp32["label"]  # same WER: the larger model
    a, b = llm("a-1.5b cpu/int8", 3.0, 1.5), llm("b-1.5b cpu/int8", 2.0, 1.5)
    assert recommend([BASE], [a, b]).llm["label"] == b["label"]  # same size: the shorter stop → draft
    # exactly at the limits still fits
    edge = asr("whisper-base cpu/int8", 0.5, 0.4)
    assert recommend([edge], []).asr is not None


def test_too_weak_for_live_transcription() -> None:
    slow = asr("whisper-base cpu/int8", 0.62, 0.44)
    slower = asr("whisper-base cpu/float32", 0.93, 0.43)
    rec = recommend([slower, slow], [Q05])
    assert rec.too_weak and rec.asr_too_weak and not rec.llm_too_weak
    assert rec.asr is None and rec.llm["label"] == Q05["label"]
    assert rec.statement == (
        "This machine is too weak for live transcription: the fastest ASR configuration "
        "(whisper-base cpu/int8) has streaming RTF 0.62, above the limit of 0.5.")
    # drafting projected with the fastest ASR running anyway
    assert rec.llm_projections[Q05["label"]]["asr_rtf"] == pytest.approx(0.62)


def test_too_weak_for_drafting_and_for_both() -> None:
    rec = recommend([BASE], [Q7])
    assert rec.too_weak and rec.llm_too_weak and not rec.asr_too_weak and rec.asr is not None
    assert rec.statement.startswith("This machine is too weak for drafting: the fastest LLM (qwen-7b cpu/int8) "
                                    "needs ")
    assert "above the limit of 30 s" in rec.statement
    rec = recommend([MEDIUM], [Q7])
    assert rec.statement.startswith("This machine is too weak for live transcription and drafting: ")
    assert "RTF 0.90" in rec.statement and "qwen-7b" in rec.statement


def test_failed_configurations_are_skipped_and_reported() -> None:
    broken = asr("whisper-large cpu/int8", None, rank=5.0, error="cannot load the Whisper model")
    rec = recommend([broken, BASE], [llm("x cpu/int8", None, 9.0, error="the LLM failed"), Q05])
    assert rec.asr["label"] == BASE["label"] and rec.llm["label"] == Q05["label"]
    assert any("failed: cannot load" in r for r in rec.reasons)
    rec = recommend([broken], [])
    assert rec.too_weak and "no ASR configuration could run (cannot load the Whisper model)" in rec.statement
    assert recommend([], []).too_weak


def test_no_llm_measured_is_not_too_weak() -> None:
    rec = recommend([BASE], [])
    assert not rec.too_weak and rec.llm is None and "no LLM measured" in rec.statement


def test_asr_on_gpu_does_not_slow_the_cpu_llm() -> None:
    gpu = asr("whisper-large cuda/int8_float16", 0.1, 0.2, 5.0, device="cuda")
    rec = recommend([gpu, BASE], [Q15])
    assert rec.asr["label"] == gpu["label"]
    assert rec.llm_projections[Q15["label"]]["asr_rtf"] == 0.0


# --------------------------------------------------------------------------- projection


def test_projection_without_backlog() -> None:
    p = project_ten_minute(2.0, [5.0, 3.0])
    assert p["full_draft_s"] == pytest.approx(5.0 + 3.0 + 50 * 2.0)
    assert p["backlog_at_stop_s"] == 0.0
    assert p["stop_to_draft_s"] == pytest.approx(2.0)  # only the last utterance


def test_projection_with_backlog_and_asr_share() -> None:
    fast = project_ten_minute(10.0)
    assert fast["backlog_at_stop_s"] == 0.0  # 10 s per call, an utterance every 14.3 s
    slow = project_ten_minute(10.0, asr_rtf=0.5)  # 20 s per call while recording
    assert slow["backlog_at_stop_s"] > 0 and slow["stop_to_draft_s"] > fast["stop_to_draft_s"]
    # the worker is busy from the first utterance: 51 calls of 20 s end at 14.3 + 1020 s
    first = TEN_MINUTE.audio_s / TEN_MINUTE.drafted
    assert slow["backlog_at_stop_s"] == pytest.approx((first + 51 * 20.0 - TEN_MINUTE.audio_s) * 0.5)
    assert slow["stop_to_draft_s"] == pytest.approx(slow["backlog_at_stop_s"] + 10.0)
    assert project_ten_minute(3.0)["stop_to_draft_s"] < project_ten_minute(30.0)["stop_to_draft_s"]


# --------------------------------------------------------------------------- consistency


@pytest.fixture(scope="module")
def report_json() -> dict:
    from app.cli_bench_hw import hardware_report
    from hardware.probe import probe

    rows_asr = [copy.deepcopy(r) for r in (BASE, SMALL, MEDIUM)]
    rows_llm = [copy.deepcopy(r) for r in (Q05, Q15, Q7)]
    rec = recommend(rows_asr, rows_llm)
    clip = {"name": "clip.wav", "duration_s": 60.0, "reference_text": True}
    report = hardware_report(probe(), clip, rows_asr, rows_llm, rec, run={"quick": True})
    return json.loads(json.dumps(report.to_json()))


def _data(doc: dict, key: str) -> dict:
    return next(s["data"] for s in doc["sections"] if s["data"] and key in s["data"])


def test_consistent_report_passes(report_json: dict) -> None:
    assert check_consistency(report_json) == []
    assert report_json["verdict"] == _data(report_json, "recommendation")["recommendation"]["statement"]


def test_consistency_catches_a_choice_that_contradicts_the_numbers(report_json: dict) -> None:
    doc = copy.deepcopy(report_json)
    rows = _data(doc, "asr_results")["asr_results"]
    next(r for r in rows if r["label"] == SMALL["label"])["rtf"] = 0.8  # the chosen one is now too slow
    problems = check_consistency(doc)
    assert any("ASR choice" in p for p in problems)
    assert any("does not meet RTF" in p for p in problems)

    doc = copy.deepcopy(report_json)
    _data(doc, "recommendation")["recommendation"]["llm"]["label"] = Q7["label"]
    assert any("LLM choice" in p for p in check_consistency(doc))

    doc = copy.deepcopy(report_json)
    proj = _data(doc, "recommendation")["recommendation"]["llm_projections"][Q15["label"]]
    proj["stop_to_draft_s"] = 1.0
    assert any("stop_to_draft_s" in p for p in check_consistency(doc))

    doc = copy.deepcopy(report_json)
    doc["verdict"] = "Everything is fine."
    assert any("verdict" in p for p in check_consistency(doc))

    doc = copy.deepcopy(report_json)
    _data(doc, "recommendation")["recommendation"]["too_weak"] = True
    assert any("too_weak" in p for p in check_consistency(doc))


def test_consistency_of_an_incomplete_report() -> None:
    assert check_consistency({"sections": []}) == ["no asr_results in the report",
                                                   "no recommendation in the report"]


# --------------------------------------------------------------------------- helpers


def test_asr_rank() -> None:
    names = ["whisper-tiny", "whisper-base-ct2-fp16", "faster-whisper-small", "whisper_medium",
             "whisper-large-v2", "whisper-large-v3"]
    ranks = [asr_rank(n) for n in names]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert asr_rank("nb-whisper-small-ct2") > asr_rank("whisper-small") > asr_rank("whisper-base")
    assert asr_rank("nb-whisper-small") < asr_rank("whisper-medium")
    assert asr_rank("distil-large-v3") < asr_rank("whisper-large-v3")
    assert asr_rank("large-v3-turbo") < asr_rank("whisper-large-v3")
    assert asr_rank("min-modell", 145e6) == 2.0 and asr_rank("min-modell", 1.5e9) == 4.0
    assert asr_rank("min-modell") == 0.0


def test_estimate_params_from_config_name_or_size(tmp_path: Path) -> None:
    qwen05 = {"hidden_size": 896, "num_hidden_layers": 24, "intermediate_size": 4864, "vocab_size": 151936,
              "num_attention_heads": 14, "num_key_value_heads": 2, "tie_word_embeddings": True}
    (tmp_path / "hf_config.json").write_text(json.dumps(qwen05))
    params, source = mb.estimate_params(tmp_path, "x")
    assert params == pytest.approx(0.494, abs=0.01) and source == "hf_config.json"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert mb.estimate_params(empty, "my-llama-3.2-3b-instruct") == (3.0, "name")
    assert mb.estimate_params(empty, "qwen2.5-coder-1.5b-instruct") == (1.5, "name")
    (empty / "model.bin").write_bytes(b"\0" * 1000)
    assert mb.estimate_params(empty, "mystery") == (0.0, "model.bin size")
    assert mb.estimate_params(None, "nothing") == (None, "unknown")


def test_asr_plan() -> None:
    types = {"cpu": ["int8", "int8_float32", "float32"]}
    assert mb.asr_plan(["m"], types) == [("m", "cpu", "int8"), ("m", "cpu", "float32")]
    assert mb.asr_plan(["m"], types, quick=True) == [("m", "cpu", "int8")]
    gpu = {**types, "cuda:0": ["float16", "int8", "int8_float16", "float32"]}
    assert mb.asr_plan(["a", "b"], gpu)[2:4] == [("a", "cuda", "int8_float16"), ("a", "cuda", "float16")]
    assert len(mb.asr_plan(["a", "b"], gpu)) == 8
    assert mb.asr_plan(["m"], {"cpu": ["float32"]}) == [("m", "cpu", "float32")]


def _wav(path: Path, seconds: float) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * 16000)) / 16000
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, subtype="PCM_16")
    return path


def test_load_clip(tmp_path: Path) -> None:
    short = _wav(tmp_path / "short.wav", 5)
    with pytest.raises(ConfigError, match=r"only 5\.0 s long.*--clip"):
        mb.load_clip(short)
    with pytest.raises(ConfigError, match="clip text not found"):
        mb.load_clip(short, tmp_path / "missing.txt")
    text = tmp_path / "clip.txt"
    text.write_text("hei på deg\n", encoding="utf-8")
    clip = mb.load_clip(_wav(tmp_path / "ok.wav", 31), text)
    assert clip.reference == "hei på deg" and clip.duration_s == pytest.approx(31)
    assert clip.info()["reference_words"] == 3
    cut = mb.load_clip(tmp_path / "ok.wav", text, max_s=30)  # cut: the text no longer matches
    assert cut.reference is None and cut.duration_s == pytest.approx(30) and cut.full_duration_s == pytest.approx(31)
    long = mb.load_clip(_wav(tmp_path / "long.wav", mb.MAX_CLIP_S + 5), text)
    assert long.duration_s == pytest.approx(mb.MAX_CLIP_S) and long.reference is None


def test_default_clip_follows_the_shared_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIBE_SHARED_DIR", str(tmp_path))
    shipped = mb.default_clip()  # no shared folder: the demo's copy in the package
    assert shipped is not None and shipped[0].parent.name == "demo" and shipped[0].is_file()
    assert shipped[1] is not None and shipped[1].read_text(encoding="utf-8").startswith("Nordmenn er")
    speech = tmp_path / "data" / "speech"
    speech.mkdir(parents=True)
    (speech / "king.mp3").write_bytes(b"")
    assert mb.default_clip() == (speech / "king.mp3", None)


def test_representative_utterances_match_the_profile() -> None:
    units = mb._representative_units()
    assert len(units) >= mb.LINE_WARMUP + mb.LINE_CALLS
    measured = units[mb.LINE_WARMUP: mb.LINE_WARMUP + mb.LINE_CALLS]
    words = [len(u.utterance.text.split()) for u in measured]
    assert abs(sum(words) / len(words) - TEN_MINUTE.mean_words) < 3
    assert any(u.question is not None for u in measured)
