"""hardware.mic and its parts (mic_analysis, mic_verdict, mic_asr, mic_report): the
measurements on synthetic signals with known properties, the verdicts, the
reference-mismatch rule, and the shared Norwegian speech."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from asr.types import SAMPLE_RATE, Segment, Transcript
from hardware import mic, mic_analysis, mic_asr, mic_report, mic_verdict
from hardware.mic_analysis import analyze
from hardware.mic_verdict import verdict
from hardware.passage import PASSAGE_NB, PASSAGE_NN, passage

SR = SAMPLE_RATE
RNG = np.random.default_rng(20240611)


def tone(seconds: float, amp: float = 0.1, freq: float = 997.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


def noise(seconds: float, sigma: float, sr: int = SR) -> np.ndarray:
    return RNG.normal(0.0, sigma, int(seconds * sr))


def broadband(
    seconds: float, rms: float = 0.1, lo: float = 100.0, hi: float = 7500.0, sr: int = SR
) -> np.ndarray:
    """Noise band-limited to [lo, hi] Hz: a stand-in for full-band (or telephone) speech."""
    n = int(seconds * sr)
    spec = np.fft.rfft(RNG.normal(0.0, 1.0, n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spec[(f < lo) | (f > hi)] = 0
    y = np.fft.irfft(spec, n)
    return rms * y / np.std(y)


def at_snr(signal_power: float, snr_db: float) -> float:
    """The white-noise sigma that puts a signal of ``signal_power`` at ``snr_db``."""
    return float(np.sqrt(signal_power / 10 ** (snr_db / 10)))


# ----------------------------------------------------------------------- SNR


@pytest.mark.parametrize("snr", [0, 10, 20, 30, 40])
def test_sine_in_white_noise_measures_its_snr(snr: int) -> None:
    amp = 0.1
    sigma = at_snr(amp**2 / 2, snr)
    a = analyze(
        (tone(4, amp) + noise(4, sigma)).astype(np.float32),
        SR,
        silence=noise(2, sigma).astype(np.float32),
    )
    assert a.snr_db == pytest.approx(snr, abs=1.0)
    assert a.noise_floor_dbfs == pytest.approx(20 * np.log10(sigma), abs=0.5)
    v, reasons = verdict(a)
    snr_reasons = [r for r in reasons if "signal-to-noise" in r]
    if snr <= 10:
        assert v == "unfit" and "too low" in snr_reasons[0]
    elif snr >= 40:
        assert not snr_reasons
    else:  # 20 and 30 dB sit on the thresholds: either side is right within ±1 dB
        assert len(snr_reasons) <= 1
    assert a.bandwidth_hz < 3000  # a tone is not speech: it carries one frequency


@pytest.mark.parametrize(("snr", "expected"), [(45, "ok"), (25, "marginal"), (10, "unfit")])
def test_full_band_signal_verdict_follows_the_snr(snr: int, expected: str) -> None:
    sigma = at_snr(0.1**2, snr)
    a = analyze(broadband(4) + noise(4, sigma), SR, silence=noise(2, sigma))
    assert a.snr_db == pytest.approx(snr, abs=1.0)
    assert a.bandwidth_hz >= 7000
    assert a.speech_level_dbfs == pytest.approx(-20, abs=0.5)
    v, reasons = verdict(a)
    assert v == expected, reasons
    if expected == "ok":
        assert "within the limits" in reasons[0]


def test_noise_floor_without_a_silence_recording_comes_from_the_pauses() -> None:
    sigma = at_snr(0.1**2, 35)
    speech = broadband(6)
    for k in range(0, 6, 2):  # 1 s pauses every 2 s
        speech[k * SR : (k + 1) * SR] = 0
    a = analyze(speech + noise(6, sigma), SR)
    assert a.noise_source.startswith("quietest")
    assert a.noise_floor_dbfs == pytest.approx(20 * np.log10(sigma), abs=1.0)
    assert a.snr_db == pytest.approx(35, abs=1.0)
    assert a.speech_s == pytest.approx(3.0, abs=0.2)


# ----------------------------------------------------------------------- clipping


@pytest.mark.parametrize("share", [0.02, 0.10])
def test_clipped_sine_measures_its_clipping_share(share: float) -> None:
    amp = 1.0 / np.cos(np.pi / 2 * share)  # this share of the samples lies beyond ±1
    pre = tone(4, amp, freq=220.3) + noise(4, 1e-4)
    truth = 100 * float(np.mean(np.abs(pre) >= 1.0))
    assert truth == pytest.approx(100 * share, abs=1.0)
    clipped = np.clip(pre, -1.0, 1.0).astype(np.float32)
    a = analyze(clipped, SR, silence=noise(2, 1e-4).astype(np.float32))
    assert a.clipping_pct == pytest.approx(truth, abs=0.5)
    v, reasons = verdict(a)
    assert v == "unfit"
    assert any("clipped" in r for r in reasons)


def test_mild_clipping_is_marginal_and_clean_signals_have_none() -> None:
    pre = broadband(4, rms=0.3)
    level = float(np.quantile(np.abs(pre), 0.997))  # 0.3 % of samples beyond the clip level
    clipped = np.clip(pre / level, -1.0, 1.0)
    a = analyze(clipped + 0.0, SR, silence=np.zeros(SR) + noise(1, 1e-5))
    assert a.clipping_pct == pytest.approx(0.3, abs=0.1)
    v, reasons = verdict(a)
    assert v == "marginal" and any("clipped" in r for r in reasons)
    clean = analyze(broadband(4, rms=0.2) + noise(4, 1e-4), SR, silence=noise(1, 1e-4))
    assert clean.clipping_pct < 0.01
    # a full-scale sine that is not clipped (peak touched once per period, not held)
    assert mic_analysis.clipping_share(np.sin(2 * np.pi * 997 * np.arange(SR) / SR)) < 0.001


# ----------------------------------------------------------------------- silence, DC


def test_digital_silence_does_not_crash_and_is_unfit() -> None:
    a = analyze(np.zeros(SR * 3, np.float32), SR)
    v, reasons = verdict(a)
    assert v == "unfit" and a.no_speech and a.digital_silence
    assert "digital silence" in reasons[0]
    assert a.noise_floor_dbfs == mic_analysis.FLOOR_DB and a.bandwidth_hz == 0.0
    json.dumps(a.to_dict(series=True))  # finite numbers only


def test_room_noise_only_is_no_speech() -> None:
    sigma = 0.003
    for silence in (noise(2, sigma), None):
        a = analyze(noise(4, sigma), SR, silence=silence)
        v, reasons = verdict(a)
        assert v == "unfit" and a.no_speech
        assert "no speech" in reasons[0]


def test_empty_and_tiny_recordings() -> None:
    for x in (np.zeros(0, np.float32), np.zeros(10, np.float32), np.ones(5, np.float32) * 0.1):
        v, _ = verdict(analyze(x, SR))
        assert v == "unfit"


def test_dc_offset_is_measured_and_reported() -> None:
    sigma = at_snr(0.1**2, 45)
    a = analyze(broadband(4) + noise(4, sigma) + 0.05, SR, silence=noise(2, sigma) + 0.05)
    assert a.dc_offset_pct == pytest.approx(5.0, abs=0.2)
    assert a.snr_db == pytest.approx(45, abs=1.0)  # the offset does not count as signal
    v, reasons = verdict(a)
    assert v == "marginal"
    assert any("DC offset" in r for r in reasons)


# ----------------------------------------------------------------------- bandwidth


def _resample(x: np.ndarray, rate: int, to: int) -> np.ndarray:
    import av

    res = av.AudioResampler(format="flt", layout="mono", rate=to)
    frame = av.AudioFrame.from_ndarray(x[None, :].astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = rate
    out = [f.to_ndarray().reshape(-1) for f in res.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in res.resample(None)]
    return np.concatenate(out)


def test_telephone_band_speech_is_reported(king_audio: np.ndarray) -> None:
    clip = king_audio[: SR * 20]
    full = analyze(clip, SR)
    assert full.bandwidth_hz >= 7000
    phone = _resample(_resample(clip, SR, 8000), 8000, SR)  # through an 8 kHz device
    a = analyze(phone, SR)
    # ≤ ~4 kHz: the 8 kHz band edge plus the upsampler's images just above it
    assert a.bandwidth_hz <= 4600
    v, reasons = verdict(a)
    assert v == "unfit"
    assert any("telephone band" in r for r in reasons)


def test_band_limited_noise_300_to_3400_hz() -> None:
    sigma = at_snr(0.1**2, 45)
    a = analyze(broadband(4, lo=300, hi=3400) + noise(4, sigma), SR, silence=noise(2, sigma))
    assert 3000 <= a.bandwidth_hz <= 3600
    assert any("telephone band" in r for r in verdict(a)[1])
    # 7 kHz wideband at 48 kHz: fine; 5.5 kHz: marginal
    a48 = analyze(
        broadband(3, hi=7200, sr=48000) + noise(3, sigma, 48000),
        48000,
        silence=noise(1, sigma, 48000),
    )
    assert 7000 <= a48.bandwidth_hz <= 7500 and verdict(a48)[0] == "ok"
    mid = analyze(broadband(3, hi=5500) + noise(3, sigma), SR, silence=noise(1, sigma))
    v, reasons = verdict(mid)
    assert v == "marginal" and any("narrow" in r for r in reasons)


# ----------------------------------------------------------------------- channels, dropouts


def test_stereo_with_a_dead_channel() -> None:
    sigma = at_snr(0.1**2, 45)
    left = broadband(4) + noise(4, sigma)
    stereo = np.stack([left, np.zeros_like(left)], axis=1).astype(np.float32)
    silence = np.stack([noise(2, sigma), np.zeros(2 * SR)], axis=1)
    a = analyze(stereo, SR, silence=silence)
    assert a.channels == 2 and a.dead_channels == [2] and a.channel_used == "1"
    assert [c.dead for c in a.per_channel] == [False, True]
    assert a.snr_db == pytest.approx(45, abs=1.0)
    assert a.dropouts == 0  # a dead channel is not a dropout
    v, reasons = verdict(a)
    assert v == "marginal"
    assert any("channel 2 is silent/dead" in r for r in reasons)


def test_stereo_equal_channels_use_the_mix_and_unequal_the_better() -> None:
    sigma = at_snr(0.1**2, 40)
    sig = broadband(4)
    two = np.stack([sig + noise(4, sigma), sig + noise(4, sigma)], axis=1)
    sil = np.stack([noise(2, sigma), noise(2, sigma)], axis=1)
    a = analyze(two, SR, silence=sil)
    assert a.channel_used == "mix" and not a.dead_channels
    assert a.snr_db == pytest.approx(43, abs=1.0)  # uncorrelated noise averages out
    quiet = np.stack([sig + noise(4, sigma), 0.2 * sig + noise(4, sigma)], axis=1)
    b = analyze(quiet, SR, silence=sil)
    assert b.channel_used == "1" and not b.dead_channels
    assert b.per_channel[1].snr_db == pytest.approx(40 - 14, abs=1.0)


def test_dropouts_and_xruns() -> None:
    sigma = at_snr(0.1**2, 45)
    speech = broadband(4) + noise(4, sigma)
    for k in (1, 2, 3):
        speech[k * SR : k * SR + int(0.02 * SR)] = 0.0  # 20 ms gaps
    speech[int(3.5 * SR) : int(3.5 * SR) + 40] = 0.0  # 2.5 ms: not a dropout
    speech[: SR // 10] = 0.0  # leading zeros (stream start): not a dropout
    a = analyze(speech, SR, silence=noise(2, sigma), xruns=2)
    assert a.dropouts == 3 + 2 and a.xruns == 2
    assert a.dropout_s == pytest.approx(0.06, abs=0.001)
    v, reasons = verdict(a)
    assert v == "marginal"
    assert any("3 dropout" in r for r in reasons) and any("2 buffer overrun" in r for r in reasons)


def test_quiet_speech_is_marginal() -> None:
    sigma = at_snr(0.003**2, 40)
    a = analyze(broadband(4, rms=0.003) + noise(4, sigma), SR, silence=noise(2, sigma))
    v, reasons = verdict(a)
    assert a.speech_level_dbfs == pytest.approx(-50.5, abs=0.5)
    assert v == "marginal" and any("level" in r for r in reasons)


def test_int16_and_channels_first_input() -> None:
    x = (broadband(2, rms=0.1) * 32767).astype(np.int16)
    a = analyze(x, SR)
    assert a.speech_level_dbfs == pytest.approx(-20, abs=0.5)
    b = analyze(np.stack([x, x]).astype(np.float32) / 32768, SR)  # (2, n)
    assert b.channels == 2


# ----------------------------------------------------------------------- verdict rules


def _good() -> mic_analysis.MicAnalysis:
    sigma = at_snr(0.1**2, 45)
    return analyze(broadband(3) + noise(3, sigma), SR, silence=noise(1, sigma))


def test_wer_thresholds_and_reference_mismatch() -> None:
    a = _good()
    assert verdict(a, wer=0.1)[0] == "ok"
    assert verdict(a, wer=0.3)[0] == "marginal"
    v, reasons = verdict(a, wer=0.6)  # clean signal: the model, not the microphone, is blamed
    assert v == "marginal" and any("word error rate 60%" in r and "ASR model" in r for r in reasons)
    sigma = at_snr(0.1**2, 25)  # a marginal SNR and a bad WER: the microphone is unfit
    noisy = analyze(broadband(3) + noise(3, sigma), SR, silence=noise(1, sigma))
    v, reasons = verdict(noisy, wer=0.6)
    assert v == "unfit" and any("too high" in r for r in reasons)
    v, reasons = verdict(a, wer=0.95, reference_mismatch=True)
    assert v == "ok"
    assert any("does not match the reference text" in r for r in reasons)
    nb = verdict(a, wer=0.95, reference_mismatch=True, lang="nb")[1]
    assert any("stemmer ikke med referanseteksten" in r for r in nb)


def test_mismatch_rule() -> None:
    a = _good()
    other = "nordmenn er nordlendinger trøndere sørlendinger og folk fra alle de andre regionene"
    assert mic_verdict.is_reference_mismatch(a, PASSAGE_NB, other, 1.0)
    assert not mic_verdict.is_reference_mismatch(a, PASSAGE_NB, PASSAGE_NB, 0.0)
    misheard = PASSAGE_NB.replace("Metformin", "met for min").replace("Ramipril", "rami pril")
    assert not mic_verdict.is_reference_mismatch(a, PASSAGE_NB, misheard, 0.1)
    # a bad signal explains a bad transcript: not called a mismatch
    bad = analyze(broadband(3) + noise(3, 0.05), SR, silence=noise(1, 0.05))
    assert not mic_verdict.is_reference_mismatch(bad, PASSAGE_NB, other, 1.0)
    assert mic_verdict.word_overlap(PASSAGE_NB, PASSAGE_NB) == 1.0


def test_passage() -> None:
    for text in (PASSAGE_NB, PASSAGE_NN):
        words = text.split()
        assert 60 <= len(words) <= 80
        assert "Metformin" in text and "500 milligram" in text
    assert (
        passage("nn") is PASSAGE_NN and passage("no") is PASSAGE_NB and passage(None) is PASSAGE_NB
    )


# ----------------------------------------------------------------------- speech recognition


class ScriptedTranscriber:
    """A StreamingTranscriber stand-in that 'hears' a fixed text (and counts the audio)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.transcript = Transcript()
        self.samples = 0

    def insert_audio_chunk(self, chunk: Any) -> None:
        self.samples += len(chunk.samples)

    def process_iter(self) -> list[Any]:
        return []

    def finish(self) -> list[Segment]:
        end = self.samples / SR
        seg = Segment(0, 0.0, end, self.text, (), end)
        self.transcript.add(seg)
        return [seg]


def scripted(text: str) -> Any:
    made: list[ScriptedTranscriber] = []

    def factory(clock: Any = None) -> ScriptedTranscriber:
        made.append(ScriptedTranscriber(text))
        return made[-1]

    factory.made = made  # type: ignore[attr-defined]
    return factory


def test_transcribe_wer_with_a_scripted_transcriber() -> None:
    audio = np.zeros(SR * 2, np.float32)
    factory = scripted(PASSAGE_NB.replace("Ramipril", "Ramipryl"))
    seen: list[float] = []
    wer, hyp = mic_asr.transcribe_wer(audio, PASSAGE_NB, factory, on_progress=seen.append)
    assert wer == pytest.approx(1 / len(PASSAGE_NB.split()), abs=0.002)
    assert "Ramipryl" in hyp
    assert factory.made[0].samples == len(audio)
    assert seen and seen[-1] == pytest.approx(1.0)


def test_king_speech_analysis_is_plausible(king_audio: np.ndarray) -> None:
    a = analyze(king_audio, SR)
    assert -75 < a.noise_floor_dbfs < -40
    assert -35 < a.speech_level_dbfs < -12
    assert 25 < a.snr_db < 60
    assert a.bandwidth_hz >= 7000
    assert a.clipping_pct < 0.1 and abs(a.dc_offset_pct) < 0.5 and a.dropouts == 0
    assert 0.4 * a.duration_s < a.speech_s < a.duration_s
    assert verdict(a)[0] in ("ok", "marginal")


def test_reading_another_text_is_a_mismatch_not_a_bad_microphone(
    king_audio: np.ndarray, king_txt: Path
) -> None:
    """The king's speech recorded, the built-in passage as reference: the transcript (here
    scripted as the king's words) does not match, which is reported as such."""
    result = mic.run_mic_test(
        speech=king_audio,
        sample_rate=SR,
        reference=PASSAGE_NB,
        transcriber_factory=scripted(king_txt.read_text(encoding="utf-8")),
        make_report=True,
        fingerprint={},
    )
    assert result.reference_mismatch and result.wer is not None and result.wer > 0.7
    assert any("does not match the reference text" in r for r in result.reasons)
    assert result.verdict == verdict(result.analysis)[0] != "unfit"
    html = result.report.html()
    assert "Nordmenn" not in html  # the transcript of a mismatched recording is not shown
    assert "does not match the reference text" in html


def test_run_mic_test_report(tmp_path: Path) -> None:
    sigma = at_snr(0.1**2, 45)
    stages: list[str] = []
    result = mic.run_mic_test(
        speech=broadband(3) + noise(3, sigma),
        silence=noise(1, sigma),
        sample_rate=SR,
        reference=PASSAGE_NB,
        transcriber_factory=scripted(PASSAGE_NB),
        progress=lambda stage, f: stages.append(stage),
        fingerprint={"host_id": "x"},
    )
    assert result.verdict == "ok" and result.wer == 0.0 and not result.reference_mismatch
    assert stages[0] == "check" and stages[-1] == "done" and "transcribe" in stages
    rep = result.report
    assert rep.kind == "mic" and rep.verdict == "ok" and rep.summary == result.reasons
    written = mic_report.write_report_files(
        rep, json_path=tmp_path / "m.json", html_path=tmp_path / "m.html"
    )
    data = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))
    assert data["verdict"] == "ok"
    measures = next(s for s in data["sections"] if s["heading"] == "Measurements")
    assert measures["data"]["snr_db"] == pytest.approx(45, abs=1)
    assert len(measures["figures"]) == 2
    assert "Metformin" in (tmp_path / "m.html").read_text(encoding="utf-8")  # the transcript
    assert len(written) == 2
    nb = mic.run_mic_test(speech=broadband(2), sample_rate=SR, lang="nb", fingerprint={})
    assert nb.report.title == "Mikrofontest"


def test_no_speech_skips_the_transcription() -> None:
    factory = scripted("noe")
    result = mic.run_mic_test(
        speech=np.zeros(SR, np.float32),
        sample_rate=SR,
        reference=PASSAGE_NB,
        transcriber_factory=factory,
        make_report=False,
    )
    assert result.wer is None and not factory.made
    assert any("no speech" in n for n in result.notes)


# ----------------------------------------------------------------------- real Whisper


@pytest.mark.integration
def test_real_whisper_on_the_king_speech(
    engine: Any, king_audio: np.ndarray, king_txt: Path
) -> None:
    from asr.evaluation import error_rates

    clip = king_audio[: SR * 40]
    result = mic.run_mic_test(
        speech=clip,
        sample_rate=SR,
        reference=PASSAGE_NB,
        transcriber_factory=engine.transcriber,
        model_id=engine.model_id,
        fingerprint={},
    )
    assert result.hypothesis
    assert result.reference_mismatch
    assert any("does not match the reference text" in r for r in result.reasons)
    assert result.verdict != "unfit"
    # against what was actually said, the WER is plausible for Whisper base
    said = king_txt.read_text(encoding="utf-8")
    hyp_words = len(result.hypothesis.split())
    ref = " ".join(said.split()[: int(hyp_words * 1.1)])
    assert error_rates(ref, result.hypothesis).wer < 0.6
