"""The real speaker encoder (resemblyzer's GE2E weights, read and run without torch) on real
audio: the weights as torch reads them, the LSTM as torch runs it, voices apart on a shared
consultation, one real voice as one, and enrolment that refuses bad recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asr.sources import decode_file
from asr.types import SAMPLE_RATE

pytestmark = pytest.mark.integration
VOICE = Path(__file__).resolve().parents[1] / "data" / "voice"


@pytest.fixture(scope="module")
def encoder():
    from asr.speakers.encoder import VoiceEncoder

    return VoiceEncoder()


def test_the_weights_and_the_network_match_torch(encoder) -> None:
    torch = pytest.importorskip("torch")
    from asr.speakers.encoder import read_legacy_checkpoint, weights_path

    ours = read_legacy_checkpoint(weights_path())["model_state"]
    theirs = torch.load(weights_path(), map_location="cpu", weights_only=True)["model_state"]
    assert set(ours) == set(theirs)
    for k, v in theirs.items():
        assert np.array_equal(ours[k], v.numpy()), k
    lstm, linear = torch.nn.LSTM(40, 256, 3, batch_first=True), torch.nn.Linear(256, 256)
    lstm.load_state_dict({k[5:]: v for k, v in theirs.items() if k.startswith("lstm.")})
    linear.load_state_dict({k[7:]: v for k, v in theirs.items() if k.startswith("linear.")})
    mels = np.random.default_rng(3).random((4, 160, 40)).astype(np.float32)
    with torch.no_grad():
        _, (hidden, _) = lstm(torch.from_numpy(mels))
        raw = torch.relu(linear(hidden[-1]))
        expected = (raw / raw.norm(dim=1, keepdim=True)).numpy()
    assert np.abs(encoder._forward(mels) - expected).max() < 1e-4


def test_a_damaged_weights_file_is_refused_by_its_checksum(tmp_path: Path) -> None:
    from asr.errors import ModelError
    from asr.speakers.encoder import VoiceEncoder, weights_path

    bad = tmp_path / "pretrained.pt"
    data = bytearray(weights_path().read_bytes())
    data[5000] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        VoiceEncoder(bad)


def test_the_voices_of_a_shared_consultation_are_apart(encoder, consultations_dir: Path) -> None:
    from asr.speakers.cluster import cluster

    audio, _ = decode_file(consultations_dir / "allmenn-hypertensjon.flac")
    turns = json.loads((consultations_dir / "allmenn-hypertensjon.turns.json").read_text())
    embeds, speakers, weights = [], [], []
    for t in turns:
        clip = audio[int(t["start"] * SAMPLE_RATE):int(t["end"] * SAMPLE_RATE)]
        if len(clip) >= SAMPLE_RATE:
            embeds.append(encoder.embed(clip))
            speakers.append(t["speaker"])
            weights.append(len(clip) / SAMPLE_RATE)
    x = np.stack(embeds)
    sims = x @ x.T
    same = [sims[i, j] for i in range(len(x)) for j in range(i) if speakers[i] == speakers[j]]
    other = [sims[i, j] for i in range(len(x)) for j in range(i) if speakers[i] != speakers[j]]
    assert np.mean(same) > np.mean(other) + 0.03
    labels = cluster(x, np.array(weights), min_voice_weight=6.0).labels
    assert labels.max() == 1
    agree = sum(w for lab, s, w in zip(labels, speakers, weights, strict=True) if (lab == labels[0]) == (s == speakers[0]))
    assert agree / sum(weights) >= 0.9


@pytest.mark.xfail(strict=False, reason="issue #19 (blocked), found 2026-12-07: on this project's AMD EPYC machines "
                   "one of king.mp3's 15 segments (id 3) clusters as a second voice (also on the code before issue #21); "
                   "on the Intel Xeon CI machines it came out as one voice. Cause not yet found")
def test_one_real_voice_comes_out_as_one(engine, king_audio: np.ndarray, encoder) -> None:
    from asr.pipeline import run_stream
    from asr.sources import ArraySource
    from asr.speakers.stream import SpeakerStream
    from asr.speakers.tracker import SpeakerTracker

    tracker = SpeakerTracker(encoder)
    result = run_stream(ArraySource(king_audio), lambda clock: SpeakerStream(engine.transcriber(clock), tracker))
    segs = [s for s in result.transcript.segments if s.text.strip()]
    assert len(segs) >= 10
    assert tracker.assignment.voices == 1
    assert len({s.speaker_id for s in segs if s.speaker_id is not None}) == 1


def test_enrolment_takes_a_clean_reading_and_refuses_bad_ones(encoder, king_audio: np.ndarray) -> None:
    from hardware.voice import EnrollmentError, enroll

    reading, _ = decode_file(VOICE / "lege-passage.flac")
    profile = enroll(reading, encoder)
    assert profile.speech_s >= 30 and profile.snr_db > 30 and profile.consistency > 0.8
    assert abs(float(np.linalg.norm(profile.embedding)) - 1.0) < 1e-4
    rng = np.random.default_rng(0)
    bad = {
        "silent": np.zeros(30 * SAMPLE_RATE, dtype=np.float32),
        "no speech": rng.normal(0, 0.1, 30 * SAMPLE_RATE).astype(np.float32),
        "too little": reading[: 8 * SAMPLE_RATE],
        "clipped": np.clip(reading * 8, -1, 1),
        "too noisy": reading + rng.normal(0, 0.05, len(reading)).astype(np.float32),
        "more than one voice": np.concatenate([reading[: 20 * SAMPLE_RATE], king_audio[25 * SAMPLE_RATE:50 * SAMPLE_RATE]]),
    }
    for expected, audio in bad.items():
        with pytest.raises(EnrollmentError) as err:
            enroll(audio, encoder)
        assert expected in str(err.value) and "\n" not in str(err.value), (expected, str(err.value))
