"""The microphone test's signal measurements: what a recording's noise, level, clipping, DC
offset, dropouts, bandwidth and channels are, in numbers (:func:`analyze`). The verdict on
these numbers is :mod:`hardware.mic_verdict`'s.

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
  above 4 kHz), hence the 5 kHz limit for "telephone band" in :mod:`hardware.mic_verdict`.
* **Channels**: each is analysed; a channel more than 30 dB below the other (or all
  zeros) is *dead*. The verdict uses the mix (what the app records: it averages the
  channels) when the channels are within 3 dB of each other, else the better channel.

This module never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

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
NO_SPEECH_SNR_DB = -3.0

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
