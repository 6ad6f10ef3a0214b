"""The microphone test for hospital IT (issue #6): is this microphone good enough?

Record a few seconds of room silence and the clinician reading the fixed passage
(:mod:`hardware.passage`), or analyse a file; measure the signal; transcribe the passage
with the real streaming ASR and compare it with the text; give a verdict with reasons.
The CLI (``scribe bench mic``) and the app's "Test microphone" dialog both call
:func:`run_mic_test`. Nothing is written to disk but the reports asked for: the
recordings live in memory and are dropped when the test ends.

Measurements (:func:`analyze`; each channel separately, numbers in dB relative to full
scale = 1.0):

* **Frames** of 50 ms; the DC offset is removed before any power is computed.
* **Noise floor** (dBFS): the mean power of the silence recording (frames more than
  10 dB above its median, a cough or a door, are left out); without one, the mean power
  of the quietest 10 % of the speech recording's frames (digital zeros left out).
* **Speech level** (dBFS): the active speech level, a simplified ITU-T P.56: the mean
  power of the frames that are at most 15.9 dB below that level and at least 2 dB above
  the noise floor (found by iteration). Pauses between words are left out; every frame
  of a continuous test tone counts.
* **SNR** (dB) = 10·log10((P_speech − P_noise) / P_noise), so a tone in white noise at a
  set SNR measures that SNR.
* **Clipping** (% of samples): samples within half a 16-bit step of the channel's
  positive (or negative) extreme, when that extreme is at least 0.25 FS and is held for
  2 or more consecutive samples somewhere; or the samples exactly at the extreme when it
  is within 1 % of full scale and reached 3 or more times. A hard-clipped signal sits at
  its extreme; a clean one touches it once.
* **DC offset** (% FS): the mean of the samples.
* **Dropouts**: runs of exact digital zeros (on all channels) of 10 ms or more inside a
  recording (not at its start or end), plus the buffer overruns the device reported.
* **Effective bandwidth** (Hz): the highest frequency at which the long-term spectrum of
  the active speech (Welch, Hann windows of ~32 ms, 50 % overlap, smoothed over 125 Hz)
  is within 50 dB of its peak and at least 6 dB above the noise spectrum, for 3
  consecutive bins. The noise spectrum comes from the silence recording, or from the
  quietest 10 % of windows when they are at least 10 dB below the speech. Audio from an
  8 kHz device that was upsampled measures about 4–4.5 kHz (the upsampler's images just
  above 4 kHz), hence the 5 kHz limit for "telephone band" below.
* **Channels**: each is analysed; a channel more than 30 dB below the other (or all
  zeros) is *dead*. The verdict uses the mix (what the app records: it averages the
  channels) when the channels are within 3 dB of each other, else the better channel.

Verdict thresholds (:func:`verdict`; the worst reason decides):

=====================  ==================  =====================
measure                marginal            unfit
=====================  ==================  =====================
no speech              –                   SNR < −3 dB or digital silence
SNR                    < 30 dB             < 20 dB
clipping               > 0.1 %             > 1 %
bandwidth              < 7 kHz             ≤ 5 kHz (telephone band)
DC offset              > 1 % FS            –
dropouts / overruns    ≥ 1                 –
speech level           < −40 dBFS          –
dead channel           yes                 –
WER on the passage     > 25 %              > 40 %
=====================  ==================  =====================

If the transcript looks like another text than the reference (WER > 70 % or fewer than
30 % of the reference's words heard, while the signal itself is not unfit), the reasons
say "the recording does not match the reference text" and the WER is left out of the
verdict: the reading is wrong, not the microphone.

This module never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import AudioInputError, DeviceError, DeviceLostError, ScribeError

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------ thresholds
FRAME_S = 0.05
NOISE_QUANTILE = 0.10
TRANSIENT_DB = 10.0  # silence frames this far above the median are left out
ACTIVE_BELOW_DB = 15.9  # P.56: frames within this of the active level are speech
ACTIVE_ABOVE_FLOOR_DB = 2.0
SPEECH_ABOVE_FLOOR_DB = 10.0  # "speech time": frames this far above the floor
CLIP_TOL = 0.5 / 32768
CLIP_MIN_LEVEL = 0.25
DROPOUT_MIN_S = 0.010
BANDWIDTH_RANGE_DB = 50.0
BANDWIDTH_ABOVE_NOISE_DB = 6.0
DEAD_CHANNEL_DB = 30.0
EQUAL_CHANNELS_DB = 3.0
FLOOR_DB = -120.0

SNR_OK_DB = 30.0
SNR_MARGINAL_DB = 20.0
NO_SPEECH_SNR_DB = -3.0
CLIP_MARGINAL_PCT = 0.1
CLIP_UNFIT_PCT = 1.0
BANDWIDTH_OK_HZ = 7000.0
BANDWIDTH_TELEPHONE_HZ = 5000.0
BANDWIDTH_NARROW_HZ = 3000.0
DC_MARGINAL_PCT = 1.0
QUIET_DBFS = -40.0
WER_OK = 0.25
WER_MARGINAL = 0.40
MISMATCH_WER = 0.70
MISMATCH_OVERLAP = 0.30

STANDARD_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000)
ANALYSIS_RATE = 16_000
VERDICTS = ("ok", "marginal", "unfit")


class MicTestCancelled(ScribeError):
    """The test was stopped before it ended (dialog closed, Ctrl-C)."""

    exit_code = 130


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class ChannelStats:
    """The measurements of one channel (or of the mix, ``channel == 0``)."""

    channel: int
    noise_floor_dbfs: float
    speech_level_dbfs: float
    snr_db: float
    peak_dbfs: float
    clipping_pct: float
    dc_offset_pct: float
    speech_s: float
    dead: bool = False


@dataclass
class MicAnalysis:
    """What :func:`analyze` measured. Top-level numbers are those of the signal the
    verdict uses (``channel_used``: "mono", "mix" or the 1-based channel number);
    clipping and DC offset are the worst channel's."""

    sample_rate: int
    channels: int
    duration_s: float
    silence_s: float | None
    noise_source: str
    noise_floor_dbfs: float
    speech_level_dbfs: float
    snr_db: float
    peak_dbfs: float
    clipping_pct: float
    dc_offset_pct: float
    dropouts: int
    dropout_s: float
    xruns: int
    bandwidth_hz: float
    speech_s: float
    no_speech: bool
    digital_silence: bool
    channel_used: str
    dead_channels: list[int] = field(default_factory=list)
    per_channel: list[ChannelStats] = field(default_factory=list)
    # series for the plots (levels per 50 ms frame; smoothed long-term spectra)
    frame_levels_dbfs: list[float] = field(default_factory=list, repr=False)
    silence_levels_dbfs: list[float] = field(default_factory=list, repr=False)
    freqs_hz: list[float] = field(default_factory=list, repr=False)
    speech_spectrum_db: list[float] = field(default_factory=list, repr=False)
    noise_spectrum_db: list[float] = field(default_factory=list, repr=False)

    def to_dict(self, series: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not series:
            for k in (
                "frame_levels_dbfs",
                "silence_levels_dbfs",
                "freqs_hz",
                "speech_spectrum_db",
                "noise_spectrum_db",
            ):
                d.pop(k)
        return d


# ------------------------------------------------------------------ helpers


def _db(power: float) -> float:
    return max(FLOOR_DB, 10.0 * math.log10(power)) if power > 0 else FLOOR_DB


def _as_2d(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind in "iu":
        a = a.astype(np.float64) / (float(np.iinfo(a.dtype).max) + 1.0)
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        return a[:, None]
    if a.ndim != 2:
        raise ValueError(f"audio must be (samples,) or (samples, channels), not {a.shape}")
    if a.shape[1] > a.shape[0] and a.shape[0] <= 8:  # (channels, samples) given
        a = a.T
    return a


def _frame_powers(x: np.ndarray, sr: int) -> np.ndarray:
    n = max(1, int(round(FRAME_S * sr)))
    k = len(x) // n
    if k == 0:
        return np.array([float(np.mean(np.square(x)))]) if len(x) else np.zeros(0)
    return np.mean(np.square(x[: k * n].reshape(k, n)), axis=1)


def _noise_power(frames: np.ndarray, from_silence: bool) -> float:
    nz = frames[frames > 0]
    if len(nz) == 0:
        return 0.0
    if from_silence:
        keep = nz[nz <= np.median(nz) * 10 ** (TRANSIENT_DB / 10)]
        return float(np.mean(keep)) if len(keep) else float(np.mean(nz))
    k = max(1, int(math.ceil(NOISE_QUANTILE * len(nz))))
    return float(np.mean(np.sort(nz)[:k]))


def _active_threshold(frames: np.ndarray, p_noise: float) -> float:
    """The power above which a frame counts as active speech (see the module doc)."""
    nz = frames[frames > 0]
    if len(nz) == 0:
        return math.inf
    floor_thr = p_noise * 10 ** (ACTIVE_ABOVE_FLOOR_DB / 10)
    level = float(np.mean(nz))
    thr = max(level * 10 ** (-ACTIVE_BELOW_DB / 10), floor_thr)
    for _ in range(20):
        act = nz[nz >= thr]
        if len(act) == 0:
            return 0.0  # nothing stands out: every frame counts
        new = float(np.mean(act))
        new_thr = max(new * 10 ** (-ACTIVE_BELOW_DB / 10), floor_thr)
        if abs(new_thr - thr) <= 1e-6 * thr:
            break
        thr = new_thr
    return thr


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of the runs of True in ``mask``."""
    if not mask.any():
        return []
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist(), strict=True))


def clipping_share(x: np.ndarray) -> float:
    """Share (0..1) of the samples of one channel that are clipped (module doc)."""
    n = len(x)
    if n == 0:
        return 0.0
    clipped = 0
    for sign in (1.0, -1.0):
        s = sign * x
        extreme = float(s.max())
        if extreme < CLIP_MIN_LEVEL:
            continue
        cand = s >= extreme - CLIP_TOL
        count = int(cand.sum())
        if count >= 2 and bool(np.any(cand[1:] & cand[:-1])):  # held at the extreme
            clipped += count
        elif extreme >= 0.99:  # full scale reached again and again
            exact = int(np.sum(s >= extreme - 1e-9))
            if exact >= 3:
                clipped += exact
    return clipped / n


def _dropouts(x2d: np.ndarray, sr: int) -> tuple[int, float]:
    """Runs of digital zeros on every channel, ≥ 10 ms, not touching either end."""
    zero = np.all(x2d == 0.0, axis=1)
    min_len = max(1, int(round(DROPOUT_MIN_S * sr)))
    n, total = 0, 0
    for start, length in _runs(zero):
        if length >= min_len and start > 0 and start + length < len(zero):
            n += 1
            total += length
    return n, total / sr


def _segments(x: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch windows: (freqs, power spectrum per window, mean power per window)."""
    nper = 2 ** int(round(math.log2(0.032 * sr)))
    hop = nper // 2
    if len(x) < nper:
        x = np.pad(x, (0, nper - len(x)))
    win = np.hanning(nper)
    segs = np.lib.stride_tricks.sliding_window_view(x, nper)[::hop]
    spec = np.abs(np.fft.rfft(segs * win, axis=1)) ** 2 / (np.sum(win**2) * sr)
    spec[:, 1:-1] *= 2.0
    freqs = np.fft.rfftfreq(nper, 1.0 / sr)
    return freqs, spec, np.mean(np.square(segs), axis=1)


def _smooth(spec: np.ndarray, df: float) -> np.ndarray:
    width = max(1, int(round(125.0 / df)))
    if width <= 1:
        return spec
    kernel = np.ones(width) / width
    return np.convolve(spec, kernel, mode="same")


def effective_bandwidth(freqs: np.ndarray, speech: np.ndarray, noise: np.ndarray | None) -> float:
    """Highest frequency (Hz) that the speech spectrum carries (module doc); 0 if none."""
    sdb = 10 * np.log10(speech + 1e-30)
    band = freqs >= 100.0
    if not band.any() or not np.isfinite(sdb[band]).any():
        return 0.0
    ok = band & (sdb >= sdb[band].max() - BANDWIDTH_RANGE_DB)
    if noise is not None:
        ndb = 10 * np.log10(noise + 1e-30)
        ok &= sdb >= ndb + BANDWIDTH_ABOVE_NOISE_DB
    ok3 = ok.copy()
    ok3[2:] = ok[2:] & ok[1:-1] & ok[:-2]
    ok3[:2] = False
    idx = np.flatnonzero(ok3)
    return float(freqs[idx[-1]]) if len(idx) else 0.0


def _channel_stats(
    ch: int, x: np.ndarray, silence: np.ndarray | None, sr: int
) -> tuple[ChannelStats, dict[str, Any]]:
    dc = float(np.mean(x)) if len(x) else 0.0
    xc = x - dc
    frames = _frame_powers(xc, sr)
    if silence is not None and len(silence):
        sc = silence - float(np.mean(silence))
        sframes = _frame_powers(sc, sr)
        p_noise = _noise_power(sframes, from_silence=True)
    else:
        sframes = None
        p_noise = _noise_power(frames, from_silence=False)
    thr = _active_threshold(frames, p_noise)
    nz = frames[frames > 0]
    act = nz[nz >= thr] if len(nz) else nz
    p_speech = float(np.mean(act)) if len(act) else 0.0
    if p_speech <= 0:
        snr = FLOOR_DB
    elif p_noise <= 0:
        snr = -FLOOR_DB
    elif p_speech <= p_noise:
        snr = FLOOR_DB
    else:
        snr = max(FLOOR_DB, 10 * math.log10((p_speech - p_noise) / p_noise))
    speech_frames = int(np.sum(frames >= max(p_noise, 1e-20) * 10 ** (SPEECH_ABOVE_FLOOR_DB / 10)))
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    stats = ChannelStats(
        channel=ch,
        noise_floor_dbfs=round(_db(p_noise), 2),
        speech_level_dbfs=round(_db(p_speech), 2),
        snr_db=round(snr, 2),
        peak_dbfs=round(_db(peak**2), 2),
        clipping_pct=round(100.0 * clipping_share(x), 3),
        dc_offset_pct=round(100.0 * dc, 3),
        speech_s=round(speech_frames * FRAME_S, 2),
    )
    extra = {
        "xc": xc,
        "frames": frames,
        "sframes": sframes,
        "p_noise": p_noise,
        "p_speech": p_speech,
        "thr": thr,
        "silence_c": None if sframes is None else sc,
    }
    return stats, extra


def analyze(
    speech: np.ndarray,
    sample_rate: int,
    *,
    silence: np.ndarray | None = None,
    xruns: int = 0,
) -> MicAnalysis:
    """Measure a recording of speech (and optionally of the room's silence).

    ``speech``/``silence``: float samples in [-1, 1], mono ``(n,)`` or ``(n, channels)``,
    at ``sample_rate``. ``xruns``: buffer overruns the device reported while recording.
    """
    sr = int(sample_rate)
    if sr <= 0:
        raise ValueError("sample_rate must be positive")
    x = _as_2d(speech)
    n, nch = x.shape
    s2d = _as_2d(silence) if silence is not None else None
    if s2d is not None and s2d.shape[1] != nch:
        mono = s2d.mean(axis=1)
        s2d = np.repeat(mono[:, None], nch, axis=1)

    stats: list[ChannelStats] = []
    extras: list[dict[str, Any]] = []
    for c in range(nch):
        st, ex = _channel_stats(c + 1, x[:, c], None if s2d is None else s2d[:, c], sr)
        stats.append(st)
        extras.append(ex)

    digital_silence = n == 0 or not np.any(x)
    dead: list[int] = []
    if nch > 1 and not digital_silence:
        best = max(s.speech_level_dbfs for s in stats)
        for s in stats:
            if s.peak_dbfs <= FLOOR_DB or s.speech_level_dbfs <= best - DEAD_CHANNEL_DB:
                dead.append(s.channel)
        stats = [ChannelStats(**{**asdict(s), "dead": s.channel in dead}) for s in stats]

    if nch == 1:
        used, chosen, ex = "mono", stats[0], extras[0]
    else:
        alive = [s for s in stats if s.channel not in dead]
        levels = [s.speech_level_dbfs for s in alive]
        if len(alive) == nch and max(levels) - min(levels) <= EQUAL_CHANNELS_DB:
            mix = x.mean(axis=1)
            smix = None if s2d is None else s2d.mean(axis=1)
            chosen, ex = _channel_stats(0, mix, smix, sr)
            used = "mix"
        else:
            pool = alive or stats
            chosen = max(pool, key=lambda s: (s.snr_db, s.speech_level_dbfs))
            ex = extras[chosen.channel - 1]
            used = str(chosen.channel)

    dropouts, dropout_s = _dropouts(x, sr)
    if s2d is not None and len(s2d):
        d2, s2 = _dropouts(s2d, sr)
        dropouts, dropout_s = dropouts + d2, dropout_s + s2

    # long-term spectra of the active speech and of the noise
    freqs, spec, seg_power = _segments(ex["xc"], sr)
    active = seg_power >= ex["thr"] if math.isfinite(ex["thr"]) else np.zeros(len(seg_power), bool)
    active &= seg_power > 0
    if not active.any():
        active = seg_power > 0
    df = float(freqs[1] - freqs[0]) if len(freqs) > 1 else 1.0
    speech_spec = _smooth(spec[active].mean(axis=0), df) if active.any() else np.zeros(len(freqs))
    noise_spec: np.ndarray | None = None
    if ex["silence_c"] is not None:
        _, nspec, npow = _segments(ex["silence_c"], sr)
        keep = npow > 0
        if keep.any():
            noise_spec = _smooth(nspec[keep].mean(axis=0), df)
        else:
            noise_spec = np.zeros(len(freqs))
    else:
        nz = np.flatnonzero(seg_power > 0)
        if len(nz):
            k = max(1, int(math.ceil(NOISE_QUANTILE * len(nz))))
            quiet = nz[np.argsort(seg_power[nz])[:k]]
            if float(np.mean(seg_power[quiet])) * 10 <= ex["p_speech"]:
                noise_spec = _smooth(spec[quiet].mean(axis=0), df)
    no_speech = digital_silence or chosen.snr_db < NO_SPEECH_SNR_DB
    bandwidth = 0.0 if no_speech else effective_bandwidth(freqs, speech_spec, noise_spec)

    worst_clip = max(s.clipping_pct for s in stats)
    worst_dc = max((s.dc_offset_pct for s in stats), key=abs)
    return MicAnalysis(
        sample_rate=sr,
        channels=nch,
        duration_s=round(n / sr, 3),
        silence_s=None if s2d is None else round(len(s2d) / sr, 3),
        noise_source="silence recording" if s2d is not None else "quietest 10 % of frames",
        noise_floor_dbfs=chosen.noise_floor_dbfs,
        speech_level_dbfs=chosen.speech_level_dbfs,
        snr_db=chosen.snr_db,
        peak_dbfs=max(s.peak_dbfs for s in stats),
        clipping_pct=worst_clip,
        dc_offset_pct=worst_dc,
        dropouts=int(dropouts) + int(xruns),
        dropout_s=round(dropout_s, 3),
        xruns=int(xruns),
        bandwidth_hz=round(bandwidth, 1),
        speech_s=chosen.speech_s,
        no_speech=bool(no_speech),
        digital_silence=bool(digital_silence),
        channel_used=used,
        dead_channels=dead,
        per_channel=stats,
        frame_levels_dbfs=[round(_db(p), 2) for p in ex["frames"]],
        silence_levels_dbfs=[]
        if ex["sframes"] is None
        else [round(_db(p), 2) for p in ex["sframes"]],
        freqs_hz=freqs.tolist(),
        speech_spectrum_db=[round(_db(p), 2) for p in speech_spec],
        noise_spectrum_db=[] if noise_spec is None else [round(_db(p), 2) for p in noise_spec],
    )


# ------------------------------------------------------------------ verdict

_REASONS: dict[str, dict[str, str]] = {
    "en": {
        "digital_silence": "the device delivers only digital silence (muted, or the wrong "
        "input selected)",
        "no_speech": "no speech heard: the recording is no louder than the background "
        "(microphone muted, too far away, or the wrong input selected?)",
        "snr_unfit": "signal-to-noise ratio {snr:.0f} dB is too low (20 dB is the minimum, "
        "30 dB is ok): move the microphone closer or reduce the background noise",
        "snr_marginal": "signal-to-noise ratio {snr:.0f} dB is marginal (30 dB or more is ok)",
        "clip_unfit": "{pct:.1f} % of the samples are clipped (over 1 %): lower the input gain",
        "clip_marginal": "{pct:.2f} % of the samples are clipped (over 0.1 %): lower the "
        "input gain a little",
        "bw_telephone": "effective bandwidth {khz:.1f} kHz: telephone band (the device or its "
        "driver runs at 8 kHz, e.g. a Bluetooth headset in call mode); speech recognition "
        "needs about 7 kHz",
        "bw_narrow": "effective bandwidth only {khz:.1f} kHz: most speech frequencies are "
        "missing (a filter, noise suppression or a faulty microphone?); speech recognition "
        "needs about 7 kHz",
        "bw_marginal": "effective bandwidth {khz:.1f} kHz is narrow (7 kHz or more is ok)",
        "dc": "DC offset {pct:.1f} % of full scale (over 1 %): a faulty microphone or sound "
        "card input",
        "dropouts": "{n} dropout(s) in the recording (gaps of digital silence of 10 ms or more)",
        "xruns": "{n} buffer overrun(s) while recording: the computer did not keep up",
        "quiet": "speech level {db:.0f} dBFS is low (below −40 dBFS): speak closer to the "
        "microphone or raise the input gain",
        "dead_channel": "channel {ch} is silent/dead; the measurements use channel {used}. "
        "The app mixes the channels, which halves the level: fix the cable or choose a mono "
        "input",
        "wer_marginal": "word error rate {wer:.0%} on the reference passage (25 % or less is ok)",
        "wer_unfit": "word error rate {wer:.0%} on the reference passage is too high (over 40 %)",
        "wer_model": "word error rate {wer:.0%} on the reference passage although the signal measures "
        "clean: the ASR model (or the reading) limits accuracy, not the microphone; test again with "
        "the hospital's model (e.g. NB-Whisper large, --model DIR)",
        "mismatch": "the recording does not match the reference text (word error rate "
        "{wer:.0%}): the reading, not the microphone, differs, so the word error rate is "
        "left out of the verdict",
        "ok": "all measurements are within the limits (SNR {snr:.0f} dB, bandwidth "
        "{khz:.1f} kHz, clipping {pct:.2f} %)",
    },
    "nb": {
        "digital_silence": "enheten leverer bare digital stillhet (dempet, eller feil inngang "
        "valgt)",
        "no_speech": "ingen tale hørt: opptaket er ikke sterkere enn bakgrunnen (mikrofonen "
        "dempet, for langt unna eller feil inngang valgt?)",
        "snr_unfit": "signal/støy-forholdet {snr:.0f} dB er for lavt (minst 20 dB, 30 dB er "
        "godt): flytt mikrofonen nærmere eller demp bakgrunnsstøyen",
        "snr_marginal": "signal/støy-forholdet {snr:.0f} dB er i grenseland (30 dB eller mer "
        "er godt)",
        "clip_unfit": "{pct:.1f} % av samplene er klippet (over 1 %): skru ned "
        "inngangsforsterkningen",
        "clip_marginal": "{pct:.2f} % av samplene er klippet (over 0,1 %): skru "
        "inngangsforsterkningen litt ned",
        "bw_telephone": "effektiv båndbredde {khz:.1f} kHz: telefonbånd (enheten eller "
        "driveren går på 8 kHz, f.eks. et Bluetooth-headset i samtalemodus); talegjenkjenning "
        "trenger rundt 7 kHz",
        "bw_narrow": "effektiv båndbredde bare {khz:.1f} kHz: de fleste talefrekvensene "
        "mangler (et filter, støydemping eller en defekt mikrofon?); talegjenkjenning trenger "
        "rundt 7 kHz",
        "bw_marginal": "effektiv båndbredde {khz:.1f} kHz er smal (7 kHz eller mer er godt)",
        "dc": "DC-forskyvning {pct:.1f} % av fullt utslag (over 1 %): feil i mikrofonen eller "
        "lydkortinngangen",
        "dropouts": "{n} utfall i opptaket (hull med digital stillhet på 10 ms eller mer)",
        "xruns": "{n} bufferoverløp under opptaket: maskinen holdt ikke følge",
        "quiet": "talenivået {db:.0f} dBFS er lavt (under −40 dBFS): snakk nærmere mikrofonen "
        "eller skru opp forsterkningen",
        "dead_channel": "kanal {ch} er stille/død; målingene bruker kanal {used}. Programmet "
        "blander kanalene, som halverer nivået: sjekk kabelen eller velg en monoinngang",
        "wer_marginal": "ordfeilrate {wer:.0%} på referanseteksten (25 % eller mindre er godt)",
        "wer_unfit": "ordfeilraten {wer:.0%} på referanseteksten er for høy (over 40 %)",
        "wer_model": "ordfeilrate {wer:.0%} på referanseteksten selv om signalet måler rent: det er "
        "talegjenkjenningsmodellen (eller opplesningen) som begrenser, ikke mikrofonen; test igjen med "
        "sykehusets modell (f.eks. NB-Whisper large)",
        "mismatch": "opptaket stemmer ikke med referanseteksten (ordfeilrate {wer:.0%}): det "
        "er opplesningen, ikke mikrofonen, som avviker, så ordfeilraten telles ikke med i "
        "vurderingen",
        "ok": "alle målinger er innenfor grensene (signal/støy {snr:.0f} dB, båndbredde "
        "{khz:.1f} kHz, klipping {pct:.2f} %)",
    },
}


def _fmt(lang: str, key: str, **kw: Any) -> str:
    table = _REASONS.get(lang, _REASONS["en"])
    text = table[key].format(**kw)
    if lang == "nb":  # decimal comma
        text = re.sub(r"(\d)\.(\d)", r"\1,\2", text)
    return text


def verdict(
    analysis: MicAnalysis,
    wer: float | None = None,
    reference_mismatch: bool = False,
    *,
    lang: str = "en",
) -> tuple[str, list[str]]:
    """``("ok" | "marginal" | "unfit", reasons)``; thresholds in the module doc.

    Reasons are English (``lang="en"``) or bokmål (``lang="nb"``); the worst decides.
    """
    a = analysis
    found: list[tuple[int, str]] = []  # (severity 1 marginal / 2 unfit, text)

    def add(sev: int, key: str, **kw: Any) -> None:
        found.append((sev, _fmt(lang, key, **kw)))

    if a.digital_silence:
        add(2, "digital_silence")
    elif a.no_speech:
        add(2, "no_speech")
    else:
        if a.snr_db < SNR_MARGINAL_DB:
            add(2, "snr_unfit", snr=a.snr_db)
        elif a.snr_db < SNR_OK_DB:
            add(1, "snr_marginal", snr=a.snr_db)
        if a.bandwidth_hz < BANDWIDTH_NARROW_HZ:
            add(2, "bw_narrow", khz=a.bandwidth_hz / 1000)
        elif a.bandwidth_hz <= BANDWIDTH_TELEPHONE_HZ:
            add(2, "bw_telephone", khz=a.bandwidth_hz / 1000)
        elif a.bandwidth_hz < BANDWIDTH_OK_HZ:
            add(1, "bw_marginal", khz=a.bandwidth_hz / 1000)
        if a.speech_level_dbfs < QUIET_DBFS:
            add(1, "quiet", db=a.speech_level_dbfs)
    if a.clipping_pct > CLIP_UNFIT_PCT:
        add(2, "clip_unfit", pct=a.clipping_pct)
    elif a.clipping_pct > CLIP_MARGINAL_PCT:
        add(1, "clip_marginal", pct=a.clipping_pct)
    if abs(a.dc_offset_pct) > DC_MARGINAL_PCT:
        add(1, "dc", pct=a.dc_offset_pct)
    zero_runs = a.dropouts - a.xruns
    if zero_runs > 0:
        add(1, "dropouts", n=zero_runs)
    if a.xruns > 0:
        add(1, "xruns", n=a.xruns)
    for ch in a.dead_channels:
        add(1, "dead_channel", ch=ch, used=a.channel_used)
    signal_clean = not found
    if wer is not None and not a.no_speech:
        if reference_mismatch:
            found.append((0, _fmt(lang, "mismatch", wer=wer)))
        elif signal_clean and wer > WER_OK:
            # every signal measure is fine: the ASR model (or the reading) limits the WER, not
            # the microphone; say so rather than calling the microphone unfit
            add(1, "wer_model", wer=wer)
        elif wer > WER_MARGINAL:
            add(2, "wer_unfit", wer=wer)
        elif wer > WER_OK:
            add(1, "wer_marginal", wer=wer)
    severity = max((s for s, _ in found), default=0)
    reasons = [t for s, t in sorted(found, key=lambda p: -p[0])]
    if severity == 0:
        reasons.insert(
            0, _fmt(lang, "ok", snr=a.snr_db, khz=a.bandwidth_hz / 1000, pct=a.clipping_pct)
        )
    return VERDICTS[severity], reasons


# ------------------------------------------------------------------ speech recognition


class _ArraySource:
    """16 kHz mono samples in memory as an :class:`asr.sources.AudioSource` (not live)."""

    live = False

    def __init__(self, audio: np.ndarray, chunk_s: float = 0.1) -> None:
        self.audio = audio
        self.step = max(1, int(chunk_s * ANALYSIS_RATE))
        self._closed = False

    def chunks(self) -> Iterator[Any]:
        from asr.types import AudioChunk

        for i in range(0, len(self.audio), self.step):
            if self._closed:
                return
            yield AudioChunk(self.audio[i : i + self.step], i / ANALYSIS_RATE)

    def close(self) -> None:
        self._closed = True


def transcribe_wer(
    audio16k_mono: np.ndarray,
    reference_text: str,
    transcriber_factory: Callable[..., Any],
    *,
    on_progress: Callable[[float], None] | None = None,
    stop: threading.Event | None = None,
) -> tuple[float, str]:
    """Transcribe with the streaming ASR (``transcriber_factory(clock)`` makes a
    :class:`asr.streaming.StreamingTranscriber`, e.g. ``AsrEngine.transcriber``) and return
    ``(WER against reference_text, hypothesis)`` with the project's normalisation."""
    from asr.evaluation import error_rates
    from asr.pipeline import run_stream

    audio = np.ascontiguousarray(audio16k_mono, dtype=np.float32)
    duration = max(len(audio) / ANALYSIS_RATE, 1e-9)
    progress = (lambda pos: on_progress(min(1.0, pos / duration))) if on_progress else None
    result = run_stream(_ArraySource(audio), transcriber_factory, on_progress=progress, stop=stop)
    try:
        if result.error is not None:
            raise result.error
        hypothesis = result.transcript.text
    finally:
        result.transcript.clear()
    return error_rates(reference_text, hypothesis).wer, hypothesis


def word_overlap(reference: str, hypothesis: str) -> float:
    """Share (0..1) of the reference's distinct words that occur in the hypothesis."""
    from asr.evaluation import normalize_text

    ref = set(normalize_text(reference).split())
    hyp = set(normalize_text(hypothesis).split())
    return len(ref & hyp) / len(ref) if ref else 0.0


def is_reference_mismatch(
    analysis: MicAnalysis, reference: str, hypothesis: str, wer: float
) -> bool:
    """True if the recording is most likely not a reading of ``reference``: the signal
    is usable (not unfit on its own) and the transcript has words, but WER > 70 % or it
    shares fewer than 30 % of the reference's words."""
    if analysis.no_speech or len(hypothesis.split()) < 5:
        return False
    if verdict(analysis)[0] == "unfit":
        return False  # a bad signal explains a bad transcript
    return wer > MISMATCH_WER or word_overlap(reference, hypothesis) < MISMATCH_OVERLAP


# ------------------------------------------------------------------ devices


@dataclass
class DeviceChoice:
    """The input device and the format the test records in."""

    index: int
    name: str
    channels: int
    sample_rate: int
    default_samplerate: float
    max_channels: int
    notes: list[str] = field(default_factory=list)


def _error_kind(exc: BaseException) -> str:
    msg = str(exc).lower()
    if "-9985" in msg or "unavailable" in msg or "busy" in msg or "-9986" in msg:
        return "busy"
    if "-9997" in msg or "sample rate" in msg or "samplerate" in msg:
        return "rate"
    if "-9998" in msg or "channels" in msg:
        return "channels"
    return "other"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def device_error(exc: BaseException, name: str, rate: int) -> DeviceError:
    """The one-line :class:`DeviceError` for a PortAudio failure on device ``name``."""
    kind = _error_kind(exc)
    if kind == "busy":
        return DeviceError(
            f"input device {name!r} is busy: close the other program using it "
            "(a call, a recorder, another scribe window) and retry"
        )
    if kind == "rate":
        return DeviceError(f"input device {name!r} does not support {rate} Hz ({_first_line(exc)})")
    return DeviceError(f"cannot open input device {name!r} at {rate} Hz: {_first_line(exc)}")


def check_device(
    device: str | int | None,
    sample_rate: int = ANALYSIS_RATE,
    sd: Any | None = None,
    *,
    channels: int | None = None,
) -> DeviceChoice:
    """Find the input device and a format it records in, before the user starts.

    No input device, an unknown name, a busy device: :class:`DeviceError`. A device that
    does not take ``sample_rate``: its default (or another supported) rate is chosen, and
    a note says so; the recording is resampled to 16 kHz for speech recognition.
    """
    from asr.sources import load_sounddevice, resolve_input_device

    sd = sd or load_sounddevice()
    dev = resolve_input_device(device, sd)
    name = str(dev["name"])
    max_ch = int(dev["channels"])
    ch = channels or min(2, max_ch)
    default_rate = float(dev.get("default_samplerate") or 0.0)
    choice = DeviceChoice(int(dev["index"]), name, ch, int(sample_rate), default_rate, max_ch)
    check = getattr(sd, "check_input_settings", None)
    if check is None:  # an old or fake module: opening the stream will tell
        return choice

    def ok(rate: int, nch: int) -> BaseException | None:
        try:
            check(device=choice.index, samplerate=rate, channels=nch, dtype="float32")
        except Exception as exc:  # sounddevice.PortAudioError, ValueError
            return exc
        return None

    err = ok(sample_rate, ch)
    if err is not None and _error_kind(err) == "channels" and ch > 1:
        ch = choice.channels = 1
        err = ok(sample_rate, ch)
    if err is None:
        return choice
    kind = _error_kind(err)
    if kind != "rate":
        raise device_error(err, name, sample_rate)
    rates = [r for r in STANDARD_RATES if r != sample_rate and ok(r, ch) is None]
    if not rates:
        raise DeviceError(
            f"input device {name!r} accepts none of the usual sample rates ({_first_line(err)})"
        )
    use = (
        int(default_rate)
        if int(default_rate) in rates
        else max(rates, key=lambda r: (r % ANALYSIS_RATE == 0, r))
    )
    choice.sample_rate = use
    choice.notes.append(
        f"device {name!r} does not support {sample_rate} Hz; it supports "
        f"{'/'.join(str(r) for r in rates)}: recording at {use} Hz and resampling to "
        f"{ANALYSIS_RATE} Hz for speech recognition"
    )
    return choice


def list_devices(sd: Any | None = None) -> list[dict[str, Any]]:
    """Input devices with their default rate and channels, and whether they take 16 kHz
    (``None`` when the module cannot check)."""
    from asr.sources import list_input_devices, load_sounddevice

    sd = sd or load_sounddevice()
    out = []
    check = getattr(sd, "check_input_settings", None)
    for d in list_input_devices(sd):
        takes_16k: bool | None = None
        if check is not None:
            try:
                check(device=d["index"], samplerate=ANALYSIS_RATE, channels=1, dtype="float32")
                takes_16k = True
            except Exception:
                takes_16k = False
        out.append({**d, "takes_16k": takes_16k})
    return out


def record(
    device: str | int | DeviceChoice | None,
    seconds: float,
    *,
    sd: Any | None = None,
    sample_rate: int = ANALYSIS_RATE,
    channels: int = 1,
    on_progress: Callable[[float, float], None] | None = None,
    stop: threading.Event | None = None,
    block_s: float = 0.05,
    stall_timeout_s: float = 2.0,
) -> tuple[np.ndarray, int]:
    """Record ``seconds`` from an input device into memory.

    Returns ``(audio (n, channels) float32, xruns)``, ``xruns`` counting the callbacks
    whose status had ``input_overflow`` (or ``input_underflow``). ``on_progress(fraction,
    level_dbfs)`` is called from the calling thread about every 50 ms. ``stop`` cancels
    (:class:`MicTestCancelled`). Never touches the disk.
    """
    from asr.sources import level_dbfs, load_sounddevice, resolve_input_device

    sd = sd or load_sounddevice()
    if isinstance(device, DeviceChoice):
        index, name = device.index, device.name
        sample_rate, channels = device.sample_rate, device.channels
    else:
        dev = resolve_input_device(device, sd)
        index, name = int(dev["index"]), str(dev["name"])
    target = max(1, int(round(seconds * sample_rate)))
    blocks: list[np.ndarray] = []
    state = {"got": 0, "xruns": 0, "last": time.monotonic()}
    full = threading.Event()
    ended = threading.Event()

    def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status and (
            getattr(status, "input_overflow", False) or getattr(status, "input_underflow", False)
        ):
            state["xruns"] += 1
        if full.is_set():
            return
        blocks.append(np.array(indata, dtype=np.float32, copy=True))
        state["got"] += len(indata)
        state["last"] = time.monotonic()
        if state["got"] >= target:
            full.set()

    try:
        stream = sd.InputStream(
            device=index,
            channels=channels,
            samplerate=sample_rate,
            dtype="float32",
            blocksize=max(1, int(sample_rate * block_s)),
            callback=callback,
            finished_callback=ended.set,
        )
        stream.start()
    except Exception as exc:  # PortAudioError: busy, unsupported rate, unplugged
        raise device_error(exc, name, sample_rate) from None
    try:
        while not full.wait(0.05):
            if stop is not None and stop.is_set():
                raise MicTestCancelled("the microphone test was stopped")
            got = state["got"]
            if ended.is_set() and not full.is_set():
                raise DeviceLostError(
                    f"input device {name!r} stopped (unplugged?) after {got / sample_rate:.1f} s"
                )
            if time.monotonic() - state["last"] > stall_timeout_s:
                raise DeviceLostError(
                    f"input device {name!r} stopped delivering audio "
                    f"(unplugged?) after {got / sample_rate:.1f} s"
                )
            if on_progress is not None:
                last = blocks[-1] if blocks else np.zeros(0, np.float32)
                on_progress(min(1.0, got / target), level_dbfs(last))
    finally:
        try:
            stream.stop()
            stream.close()
        except Exception:  # the device may already be gone
            logger.debug("closing the input stream failed", exc_info=True)
    if on_progress is not None:
        on_progress(1.0, level_dbfs(blocks[-1]) if blocks else -100.0)
    audio = np.concatenate(blocks)[:target] if blocks else np.zeros((0, channels), np.float32)
    blocks.clear()
    if audio.ndim == 1:
        audio = audio[:, None]
    return audio, int(state["xruns"])


# ------------------------------------------------------------------ files and resampling


def decode_native(path: str | os.PathLike[str]) -> tuple[np.ndarray, int, str | None]:
    """Decode an audio file into memory at its own rate and channels.

    Returns ``(audio (n, channels) float32, rate, problem)``: ``problem`` describes a file
    that decoded only partly. :class:`AudioInputError` (one line) if it cannot be read.
    """
    import av

    from asr.sources import _planar_to_frames, _unreadable, check_audio_path, decode_file

    p = check_audio_path(path)
    # decode_file validates (empty, corrupt, truncated) exactly as transcription does
    mono16k, problem = decode_file(p)
    if len(mono16k) == 0:
        raise AudioInputError(f"{p} holds no audio")
    blocks: list[np.ndarray] = []
    rate = 0
    try:
        with av.open(str(p), mode="r", metadata_errors="ignore") as container:
            stream = container.streams.audio[0]
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue
                for frame in frames:
                    rate = rate or int(frame.sample_rate)
                    blocks.append(_planar_to_frames(frame.to_ndarray(), frame))
    except av.error.FFmpegError as exc:
        if not blocks:
            raise AudioInputError(_unreadable(p, exc)) from None
    if not blocks or not rate:
        return mono16k[:, None], ANALYSIS_RATE, str(problem) if problem else None
    return np.concatenate(blocks).astype(np.float32), rate, str(problem) if problem else None


def to_16k_mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mix to mono and resample to 16 kHz, the way the app's audio path does."""
    from asr.sources import Resampler

    a = np.asarray(audio, dtype=np.float32)
    channels = 1 if a.ndim == 1 else a.shape[1]
    r = Resampler(int(sample_rate), channels)
    out = [r.process(a), r.flush()]
    return np.concatenate(out).astype(np.float32)


# ------------------------------------------------------------------ orchestration


@dataclass
class MicTestResult:
    """The outcome of :func:`run_mic_test`. Holds no audio."""

    analysis: MicAnalysis
    verdict: str
    reasons: list[str]
    wer: float | None = None
    reference_words: int | None = None
    reference_mismatch: bool = False
    hypothesis: str | None = None
    model_id: str | None = None
    source: str = ""
    device: DeviceChoice | None = None
    notes: list[str] = field(default_factory=list)
    report: Any = None  # hardware.report.Report


Progress = Callable[[str, float], None]


def run_mic_test(
    *,
    file: str | os.PathLike[str] | None = None,
    silence_file: str | os.PathLike[str] | None = None,
    speech: np.ndarray | None = None,
    silence: np.ndarray | None = None,
    sample_rate: int | None = None,
    device: str | int | DeviceChoice | None = None,
    sd: Any | None = None,
    seconds_silence: float = 5.0,
    seconds_speech: float = 30.0,
    reference: str | None = None,
    transcriber_factory: Callable[..., Any] | None = None,
    model_id: str | None = None,
    progress: Progress | None = None,
    on_level: Callable[[float], None] | None = None,
    announce: Callable[[str, float], None] | None = None,
    stop: threading.Event | None = None,
    lang: str = "en",
    fingerprint: dict[str, Any] | None = None,
    make_report: bool = True,
    source_name: str | None = None,
    notes: list[str] | None = None,
) -> MicTestResult:
    """The whole microphone test, used by the CLI and by the dialog.

    The recording comes from ``file`` (and ``silence_file``), from ``speech`` (and
    ``silence``) arrays at ``sample_rate``, or, live, from ``device`` (``sd`` the
    sounddevice module, injectable; or a :class:`DeviceChoice` from :func:`check_device`):
    ``seconds_silence`` of room silence, then
    ``seconds_speech`` of the user reading the passage. ``announce(stage, seconds)`` is
    called before each live recording ("silence", "speech"; it may count down);
    ``progress(stage, fraction)`` for the stages "check", "silence", "speech", "analyse",
    "transcribe", "report", "done"; ``on_level(dbfs)`` with the input level while
    recording. With ``reference`` and ``transcriber_factory`` the passage is transcribed
    and its WER computed. The audio is dropped before this returns.
    """

    def step(stage: str, fraction: float) -> None:
        if stop is not None and stop.is_set():
            raise MicTestCancelled("the microphone test was stopped")
        if progress is not None:
            progress(stage, fraction)

    notes = list(notes or [])
    choice: DeviceChoice | None = None
    xruns = 0
    step("check", 0.0)
    if file is not None:
        speech, rate, problem = decode_native(file)
        if problem:
            notes.append(problem)
        source = str(file)
        if silence_file is not None:
            silence, srate, sproblem = decode_native(silence_file)
            if sproblem:
                notes.append(sproblem)
            if srate != rate:
                silence = _resample_channels(silence, srate, rate)
    elif speech is not None:
        if not sample_rate:
            raise ValueError("sample_rate is required with speech=")
        rate = int(sample_rate)
        source = source_name or "memory"
    else:
        if isinstance(device, DeviceChoice):
            choice = device
        else:
            choice = check_device(device, ANALYSIS_RATE, sd)
            notes.extend(choice.notes)
        rate = choice.sample_rate
        source = f"input device {choice.name!r}"

        def recorder(stage: str) -> Callable[[float, float], None]:
            def cb(fraction: float, level: float) -> None:
                step(stage, fraction)
                if on_level is not None:
                    on_level(level)

            return cb

        if seconds_silence > 0:
            if announce is not None:
                announce("silence", seconds_silence)
            silence, x1 = record(
                choice, seconds_silence, sd=sd, stop=stop, on_progress=recorder("silence")
            )
            xruns += x1
        if announce is not None:
            announce("speech", seconds_speech)
        speech, x2 = record(
            choice, seconds_speech, sd=sd, stop=stop, on_progress=recorder("speech")
        )
        xruns += x2

    step("analyse", 0.0)
    analysis = analyze(speech, rate, silence=silence, xruns=xruns)
    silence = None
    wer: float | None = None
    hypothesis: str | None = None
    mismatch = False
    ref_words: int | None = None
    if reference is not None and reference.strip():
        from asr.evaluation import normalize_text

        ref_words = len(normalize_text(reference).split())
        if analysis.no_speech:
            notes.append("word error rate not measured: no speech in the recording")
        elif transcriber_factory is None:
            notes.append("word error rate not measured: no speech recognition model")
        else:
            step("transcribe", 0.0)
            audio16 = to_16k_mono(speech, rate)
            speech = None
            wer, hypothesis = transcribe_wer(
                audio16,
                reference,
                transcriber_factory,
                on_progress=lambda f: step("transcribe", f),
                stop=stop,
            )
            if stop is not None and stop.is_set():
                raise MicTestCancelled("the microphone test was stopped")
            del audio16
            mismatch = is_reference_mismatch(analysis, reference, hypothesis, wer)
    speech = None
    v, reasons = verdict(analysis, wer, mismatch, lang=lang)
    result = MicTestResult(
        analysis=analysis,
        verdict=v,
        reasons=reasons,
        wer=wer,
        reference_words=ref_words,
        reference_mismatch=mismatch,
        hypothesis=hypothesis,
        model_id=model_id,
        source=source,
        device=choice,
        notes=notes,
    )
    if make_report:
        step("report", 0.0)
        result.report = build_report(result, lang=lang, fingerprint=fingerprint)
    step("done", 1.0)
    return result


def _resample_channels(audio: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    """Linear-interpolation resampling per channel (only to align a silence file)."""
    a = _as_2d(audio)
    n = int(len(a) * to_rate / rate)
    t = np.arange(n) * rate / to_rate
    return np.stack(
        [np.interp(t, np.arange(len(a)), a[:, c]) for c in range(a.shape[1])], axis=1
    ).astype(np.float32)


# ------------------------------------------------------------------ report

_REPORT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Microphone test",
        "recording": "Recording",
        "measurements": "Measurements",
        "channels": "Channels",
        "asr": "Speech recognition of the reference passage",
        "levels": "Level over time (50 ms frames)",
        "spectrum": "Long-term spectrum: speech and background",
        "time": "Time (s)",
        "level": "Level (dBFS)",
        "noise_floor": "noise floor",
        "speech_level": "speech level",
        "speech": "speech",
        "silence": "silence",
        "background": "background",
        "measure": "Measure",
        "value": "Value",
        "limits": "ok / marginal / unfit",
        "no_wer": "Not measured.",
        "hidden": "The transcript is not shown: the recording is not the reference passage.",
        "notes": "Notes",
        "r.noise_floor": "noise floor (dBFS)",
        "r.speech_level": "speech level (dBFS)",
        "r.snr": "SNR (dB)",
        "r.clipping": "clipping (% of samples)",
        "r.dc": "DC offset (% FS)",
        "r.dropouts": "dropouts + overruns",
        "r.bandwidth": "effective bandwidth (Hz)",
        "r.peak": "peak (dBFS)",
        "r.speech_s": "speech time (s)",
        "r.source": "source",
        "r.rate": "sample rate (Hz)",
        "r.channels": "channels",
        "r.used": "channel used",
        "r.speech_rec": "speech recording (s)",
        "r.silence_rec": "silence recording (s)",
        "r.xruns": "buffer overruns",
        "r.wer": "word error rate",
        "r.ref_words": "reference words",
        "r.model": "model",
        "r.matches": "matches the reference",
        "silence recording": "silence recording",
        "quietest 10 % of frames": "quietest 10 % of frames",
    },
    "nb": {
        "title": "Mikrofontest",
        "recording": "Opptak",
        "measurements": "Målinger",
        "channels": "Kanaler",
        "asr": "Talegjenkjenning av referanseteksten",
        "levels": "Nivå over tid (50 ms-rammer)",
        "spectrum": "Langtidsspekter: tale og bakgrunn",
        "time": "Tid (s)",
        "level": "Nivå (dBFS)",
        "noise_floor": "støygulv",
        "speech_level": "talenivå",
        "speech": "tale",
        "silence": "stillhet",
        "background": "bakgrunn",
        "measure": "Måling",
        "value": "Verdi",
        "limits": "godt / grenseland / uegnet",
        "no_wer": "Ikke målt.",
        "hidden": "Transkripsjonen vises ikke: opptaket er ikke referanseteksten.",
        "notes": "Merknader",
        "r.noise_floor": "støygulv (dBFS)",
        "r.speech_level": "talenivå (dBFS)",
        "r.snr": "signal/støy (dB)",
        "r.clipping": "klipping (% av samplene)",
        "r.dc": "DC-forskyvning (% av fullt utslag)",
        "r.dropouts": "utfall + bufferoverløp",
        "r.bandwidth": "effektiv båndbredde (Hz)",
        "r.peak": "toppnivå (dBFS)",
        "r.speech_s": "taletid (s)",
        "r.source": "kilde",
        "r.rate": "samplingsfrekvens (Hz)",
        "r.channels": "kanaler",
        "r.used": "kanal brukt",
        "r.speech_rec": "taleopptak (s)",
        "r.silence_rec": "stillhetsopptak (s)",
        "r.xruns": "bufferoverløp",
        "r.wer": "ordfeilrate",
        "r.ref_words": "ord i referansen",
        "r.model": "modell",
        "r.matches": "stemmer med referansen",
        "silence recording": "stillhetsopptaket",
        "quietest 10 % of frames": "de stilleste 10 % av rammene",
    },
}


def measurement_rows(a: MicAnalysis, lang: str = "en") -> list[tuple[str, Any, str]]:
    """The main numbers as ``(measure, value, limits ok / marginal / unfit)``."""
    t = _REPORT.get(lang, _REPORT["en"])
    return [
        (t["r.noise_floor"], a.noise_floor_dbfs, t.get(a.noise_source, a.noise_source)),
        (t["r.speech_level"], a.speech_level_dbfs, "≥ −40 / < −40"),
        (t["r.snr"], a.snr_db, "≥ 30 / 20–30 / < 20"),
        (t["r.clipping"], a.clipping_pct, "≤ 0.1 / ≤ 1 / > 1"),
        (t["r.dc"], a.dc_offset_pct, "≤ 1 / > 1"),
        (t["r.dropouts"], a.dropouts, "0 / ≥ 1"),
        (t["r.bandwidth"], a.bandwidth_hz, "≥ 7000 / > 5000 / ≤ 5000"),
        (t["r.peak"], a.peak_dbfs, ""),
        (t["r.speech_s"], a.speech_s, ""),
    ]


def build_report(
    result: MicTestResult, *, lang: str = "en", fingerprint: dict[str, Any] | None = None
) -> Any:
    """A :class:`hardware.report.Report` (kind "mic") with the verdict, the numbers, the
    level-over-time plot and the spectrum. The transcript is included only when it is a
    reading of the reference passage (a mismatched recording could be anything, even a
    consultation, and is not copied into a file)."""
    from hardware.report import Report, Section, line_plot, spectrum_plot

    t = _REPORT.get(lang, _REPORT["en"])
    a = result.analysis

    def kv(rows: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        return [{t["measure"]: k, t["value"]: v} for k, v in rows]

    rep = Report("mic", t["title"], fingerprint=fingerprint)
    rep.verdict = result.verdict
    rep.summary = list(result.reasons)
    rep.add(
        Section(
            t["recording"],
            table=kv(
                [
                    (t["r.source"], result.source),
                    (t["r.rate"], a.sample_rate),
                    (t["r.channels"], a.channels),
                    (t["r.used"], a.channel_used),
                    (t["r.speech_rec"], a.duration_s),
                    (t["r.silence_rec"], a.silence_s),
                    (t["r.xruns"], a.xruns),
                ]
            ),
            data={
                "source": result.source,
                "device": asdict(result.device) if result.device else None,
            },
        )
    )
    rows = [
        {t["measure"]: m, t["value"]: v, t["limits"]: lim}
        for m, v, lim in measurement_rows(a, lang)
    ]
    figures = []
    if a.frame_levels_dbfs:
        n = max(len(a.frame_levels_dbfs), len(a.silence_levels_dbfs))
        x = [round(i * FRAME_S, 3) for i in range(n)]
        ys: dict[str, Sequence[float]] = {t["speech"]: a.frame_levels_dbfs}
        if a.silence_levels_dbfs:
            ys[t["silence"]] = a.silence_levels_dbfs
        figures.append(
            line_plot(
                x,
                ys,
                title=t["levels"],
                xlabel=t["time"],
                ylabel=t["level"],
                hlines={
                    t["noise_floor"]: a.noise_floor_dbfs,
                    t["speech_level"]: a.speech_level_dbfs,
                },
            )
        )
    if a.freqs_hz and a.speech_spectrum_db:
        spectra: dict[str, Sequence[float]] = {t["speech"]: a.speech_spectrum_db}
        if a.noise_spectrum_db:
            spectra[t["background"]] = a.noise_spectrum_db
        figures.append(spectrum_plot(a.freqs_hz, spectra, title=t["spectrum"]))
    rep.add(Section(t["measurements"], table=rows, figures=figures, data=a.to_dict()))
    if a.channels > 1:
        rep.add(Section(t["channels"], table=[asdict(s) for s in a.per_channel]))
    if result.reference_words is not None:
        if result.wer is None:
            rep.add(Section(t["asr"], text=t["no_wer"]))
        else:
            data = {
                "wer": result.wer,
                "reference_words": result.reference_words,
                "reference_mismatch": result.reference_mismatch,
                "model": result.model_id,
            }
            text = t["hidden"] if result.reference_mismatch else result.hypothesis
            rep.add(
                Section(
                    t["asr"],
                    text=text,
                    table=kv(
                        [
                            (t["r.wer"], round(result.wer, 4)),
                            (t["r.ref_words"], result.reference_words),
                            (t["r.model"], result.model_id or "–"),
                            (t["r.matches"], not result.reference_mismatch),
                        ]
                    ),
                    data=data,
                )
            )
    if result.notes:
        rep.add(Section(t["notes"], text="\n".join(result.notes)))
    return rep


def write_report_files(
    report: Any, *, json_path: Path | None, html_path: Path | None
) -> list[Path]:
    from hardware.report import write_reports

    return write_reports(report, json_path=json_path, html_path=html_path)
