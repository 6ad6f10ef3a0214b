"""`scribe voice` and speaker roles in `scribe transcribe` / `scribe note`, as a user runs them
(subprocesses, fresh HOME, the real Whisper, the real speaker encoder, real recordings)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.sources import decode_file
from asr.types import SAMPLE_RATE
from tests.cli.test_cli import assert_one_line_error, fresh_env, scribe

pytestmark = pytest.mark.integration
VOICE = Path(__file__).resolve().parents[1] / "data" / "voice"


@pytest.fixture()
def env(tmp_path: Path, model_cache: Path) -> dict[str, str]:
    return fresh_env(tmp_path, model_cache)


def _profile_file(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "ambient-scribe" / "voice-profile.json"


def test_enroll_show_delete(env: dict[str, str]) -> None:
    p = scribe(env, "voice", "enroll", "--file", str(VOICE / "lege-passage.flac"), "--json")
    assert p.returncode == 0, p.stderr
    assert "biometric" in p.stderr  # the consent sentence
    path = _profile_file(env)
    assert json.loads(p.stdout)["path"] == str(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert len(doc["embedding"]) == 256 and path.stat().st_size < 8000  # 256 numbers, no audio
    assert set(os.listdir(path.parent)) == {path.name}  # nothing else (no recording) was written
    p = scribe(env, "voice", "show", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["speech_s"] >= 30
    p = scribe(env, "voice", "delete")
    assert p.returncode == 0 and not path.exists()


def test_bad_recordings_store_nothing(env: dict[str, str], tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SAMPLE_RATE * 30, dtype=np.float32), SAMPLE_RATE)
    short = tmp_path / "short.wav"
    sf.write(short, decode_file(VOICE / "lege-passage.flac")[0][: SAMPLE_RATE * 6], SAMPLE_RATE)
    for audio, reason in ((silent, "silent"), (short, "too little speech")):
        p = scribe(env, "voice", "enroll", "--file", str(audio))
        assert_one_line_error(p, 2, reason)
        assert not _profile_file(env).exists()


def test_a_foreign_profile_is_one_line_naming_the_fix(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "profile.json"
    bad.write_text('{"something": "else"}')
    assert_one_line_error(scribe(env, "voice", "show", "--profile", str(bad)), 2, "scribe voice enroll")
    clip = tmp_path / "clip.wav"
    sf.write(clip, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    assert_one_line_error(scribe(env, "transcribe", str(clip), "--voice-profile", str(bad)), 2, "scribe voice enroll")


def test_transcribe_json_carries_roles_and_off_turns_them_off(env: dict[str, str], tmp_path: Path,
                                                              consultations_dir: Path) -> None:
    audio, _ = decode_file(consultations_dir / "allmenn-hypertensjon.flac")
    clip = tmp_path / "clip.wav"
    sf.write(clip, audio[: SAMPLE_RATE * 60], SAMPLE_RATE)
    assert scribe(env, "voice", "enroll", "--file", str(VOICE / "lege-passage.flac")).returncode == 0
    p = scribe(env, "transcribe", "--json", str(clip))
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    segments = {d["id"]: d for d in lines if d["type"] == "segment"}
    for d in lines:  # later, better guesses are lines of their own
        if d["type"] == "speakers":
            for ch in d["changes"]:
                segments[ch["id"]].update(speaker=ch["speaker"], speaker_id=ch["speaker_id"])
    assert segments and all(d["speaker_id"] is not None for d in segments.values())
    turns = json.loads((consultations_dir / "allmenn-hypertensjon.turns.json").read_text())
    right = total = 0.0
    for d in segments.values():
        for t in turns:
            overlap = min(d["end"], t["end"]) - max(d["start"], t["start"])
            if overlap > 0:
                total += overlap
                right += overlap if (d["speaker"] == "lege") == (t["speaker"] == "lege") else 0.0
    assert right / total >= 0.85, right / total
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["speakers"]["method"] == "profile"
    assert summary["speakers"]["automatic"] is True and summary["speakers"]["voices"] >= 2
    # nothing about the voices or the words on stderr (the log)
    said = {d["text"] for d in segments.values() if len(d["text"]) > 12}
    assert not any(text in p.stderr for text in said) and "embedding" not in p.stderr

    p = scribe(env, "transcribe", "--json", "--speakers", "off", str(clip))
    assert p.returncode == 0, p.stderr
    segs = [json.loads(x) for x in p.stdout.splitlines() if '"segment"' in x]
    assert segs and all(d["speaker"] is None and d["speaker_id"] is None for d in segs)
    assert "speakers" not in json.loads(p.stdout.splitlines()[-1])
