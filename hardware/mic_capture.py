"""The microphone test's audio, into memory: an input device and a format it records in
(:func:`check_device`), a recording from it (:func:`record`), or a file decoded at its own
rate and channels (:func:`decode_native`). Nothing is written to disk.

This module never imports Qt or anything under ``app/``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asr.errors import AudioInputError, DeviceError, DeviceLostError, ScribeError
from hardware.mic_analysis import _as_2d

logger = logging.getLogger(__name__)

STANDARD_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000)
ANALYSIS_RATE = 16_000


class MicTestCancelled(ScribeError):
    """The test was stopped before it ended (dialog closed, Ctrl-C)."""

    exit_code = 130


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


def _resample_channels(audio: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    """Linear-interpolation resampling per channel (only to align a silence file)."""
    a = _as_2d(audio)
    n = int(len(a) * to_rate / rate)
    t = np.arange(n) * rate / to_rate
    return np.stack(
        [np.interp(t, np.arange(len(a)), a[:, c]) for c in range(a.shape[1])], axis=1
    ).astype(np.float32)
