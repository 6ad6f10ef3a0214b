"""Audio sources: files (decoded with PyAV) and input devices (sounddevice/PortAudio).

Both yield :class:`AudioChunk` values of 16 kHz mono float32 with session-time starts.
Nothing is written to disk: files are decoded into memory, the microphone stream is
passed on through an in-memory queue.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from asr.errors import AudioInputError, DeviceError, DeviceLostError, TruncatedAudioError
from asr.types import SAMPLE_RATE, AudioChunk

logger = logging.getLogger(__name__)

CHUNK_S = 0.1
SUPPORTED_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a")


class AudioSource(Protocol):
    """Something that yields 16 kHz mono float32 chunks until it ends or is closed."""

    live: bool
    """True if chunks arrive on a wall clock (microphone, real-time replay)."""

    def chunks(self) -> Iterator[AudioChunk]: ...

    def close(self) -> None: ...


def _cancels(block: np.ndarray) -> bool:
    """The channels of ``block`` (frames x channels) cancel in the average: there is signal
    (RMS above -60 dBFS), the channels are strongly anti-correlated, and the average keeps
    under a tenth of the channels' energy."""
    if len(block) < 160:
        return False
    power = float(np.mean(block * block))
    if power < 1e-6:
        return False
    mix = block.mean(axis=1)
    a, b = block[:, 0] - block[:, 0].mean(), block[:, 1] - block[:, 1].mean()
    denom = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    corr = float(np.sum(a * b)) / denom if denom > 0 else 0.0
    return corr < -0.8 and float(np.mean(mix * mix)) < 0.1 * power


class Resampler:
    """Streaming conversion of any rate and channel count to 16 kHz mono float32.

    Uses FFmpeg's swresample through PyAV (a faster-whisper dependency), which keeps
    filter state between blocks so a live stream has no seams.
    """

    def __init__(self, rate: int, channels: int) -> None:
        import av

        self.rate = int(rate)
        self.channels = int(channels)
        self._passthrough = self.rate == SAMPLE_RATE
        self._layout = {1: "mono", 2: "stereo"}.get(self.channels)
        self._resampler = (
            None
            if self._passthrough
            else av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        )

    def _mono(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 2:
            if block.shape[1] > 1 and not getattr(self, "_first_channel", False) and _cancels(block):
                # one channel phase-inverted (a miswired XLR adapter, a stereo mic with a flipped
                # capsule): the average is near silence. From here on the first channel is used.
                self._first_channel = True
                logger.warning("the input's channels cancel each other out (one is phase-inverted): "
                               "using the first channel only")
            if getattr(self, "_first_channel", False) or block.shape[1] == 1:
                block = block[:, 0]
            else:
                block = block.mean(axis=1)
        return np.ascontiguousarray(block, dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        """Convert ``block`` (frames x channels, or frames) to 16 kHz mono."""
        mono = self._mono(block)
        if self._resampler is None:
            return mono
        return self._run(mono)

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self._run(None)

    def _run(self, mono: np.ndarray | None) -> np.ndarray:
        import av

        frame = None
        if mono is not None:
            if len(mono) == 0:
                return np.zeros(0, dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(mono[None, :], format="flt", layout="mono")
            frame.sample_rate = self.rate
        assert self._resampler is not None
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


# ---------------------------------------------------------------------------- files
def check_audio_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise AudioInputError(f"audio file not found: {p}")
    if p.is_dir():
        raise AudioInputError(f"{p} is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise AudioInputError(f"cannot read {p}: permission denied")
    return p


def decode_file(path: str | os.PathLike[str]) -> tuple[np.ndarray, TruncatedAudioError | None]:
    """Decode a whole file to 16 kHz mono float32 in memory.

    Returns the samples and, if the file turned out to be cut short or damaged after
    some audio decoded, the error to report once that audio has been transcribed.
    Raises :class:`AudioInputError` if nothing usable can be decoded.
    """
    import av

    p = check_audio_path(path)
    if p.stat().st_size == 0:
        return np.zeros(0, dtype=np.float32), None
    try:
        container = av.open(str(p), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise AudioInputError(_unreadable(p, exc)) from None
    damaged: str | None = None
    blocks: list[np.ndarray] = []
    with container:
        if not container.streams.audio:
            raise AudioInputError(f"{p} has no audio stream (unsupported format?)")
        stream = container.streams.audio[0]
        declared = _declared_seconds(container, stream)
        resampler: Resampler | None = None
        bad_frames = 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    bad_frames += 1
                    continue
                for frame in frames:
                    arr = frame.to_ndarray()
                    if resampler is None:
                        resampler = Resampler(frame.sample_rate, len(frame.layout.channels))
                    blocks.append(resampler.process(_planar_to_frames(arr, frame)))
        except av.error.FFmpegError as exc:
            damaged = f"decoding stopped early ({exc.__class__.__name__})"
        if resampler is not None:
            blocks.append(resampler.flush())
        audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
        decoded = len(audio) / SAMPLE_RATE
        if bad_frames and damaged is None:
            damaged = f"{bad_frames} damaged packet(s) skipped"
        if declared and decoded < declared - max(0.5, 0.02 * declared):
            damaged = f"only {decoded:.1f} s of the declared {declared:.1f} s could be decoded"
        wav = _wav_declared_bytes(p)
        if wav and wav[1] < wav[0]:
            damaged = f"the header declares {wav[0]} bytes of audio but only {wav[1]} are present"
    if len(audio) == 0 and damaged:
        raise AudioInputError(f"{p} is corrupt or truncated: {damaged}")
    if len(audio) == 0 and declared and declared > 0.1:
        raise AudioInputError(f"{p} is corrupt: no audio could be decoded")
    problem = TruncatedAudioError(f"{p} is truncated or corrupt: {damaged}") if damaged else None
    return audio, problem


def _unreadable(p: Path, exc: Exception) -> str:
    suffix = p.suffix.lower()
    if suffix and suffix not in SUPPORTED_SUFFIXES:
        return (
            f"unsupported audio format {suffix!r} for {p}: "
            f"use WAV, FLAC, MP3 or OGG"
        )
    return f"{p} is not a readable audio file (corrupt or unsupported format)"


def _declared_seconds(container: Any, stream: Any) -> float | None:
    try:
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return float(container.duration) / 1_000_000
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return None


def _wav_declared_bytes(p: Path) -> tuple[int, int] | None:
    """For a RIFF/WAVE file: (bytes the header declares for the data chunk, bytes present)."""
    import struct

    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            cid, clen = struct.unpack("<4sI", fh.read(8))
            if cid == b"data":
                if clen in (0, 0xFFFFFFFF):  # streaming writers leave it open
                    return None
                return clen, size - pos - 8
            pos += 8 + clen + (clen & 1)
    return None


def _planar_to_frames(arr: np.ndarray, frame: Any) -> np.ndarray:
    """PyAV gives (channels, samples) for planar or (1, samples*channels) packed audio."""
    channels = len(frame.layout.channels)
    if arr.dtype.kind in "iu":
        scale = float(np.iinfo(arr.dtype).max) + 1.0
        arr = arr.astype(np.float32) / scale
    if frame.format.is_planar:
        return np.asarray(arr, dtype=np.float32).T
    return np.asarray(arr, dtype=np.float32).reshape(-1, channels)


class FileSource:
    """Replays a decoded file, either on the wall clock (``realtime``) or at once.

    ``problem`` holds a :class:`TruncatedAudioError` for a partly decodable file; the
    decodable audio is still yielded so nothing that can be transcribed is lost.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        realtime: bool = False,
        chunk_s: float = CHUNK_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.audio, self.problem = decode_file(path)
        self.live = realtime
        self.chunk_samples = max(1, int(chunk_s * SAMPLE_RATE))
        self._sleep = sleep
        self._clock = clock
        self._closed = threading.Event()

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def chunks(self) -> Iterator[AudioChunk]:
        t0 = self._clock()
        for i in range(0, len(self.audio), self.chunk_samples):
            if self._closed.is_set():
                return
            block = self.audio[i : i + self.chunk_samples]
            start = i / SAMPLE_RATE
            if self.live:  # a chunk is available once its last sample was "spoken"
                wait = t0 + start + len(block) / SAMPLE_RATE - self._clock()
                if wait > 0:
                    self._sleep(wait)
            yield AudioChunk(block, start)

    def close(self) -> None:
        self._closed.set()

    def wipe(self) -> None:
        self.audio = np.zeros(0, dtype=np.float32)


# --------------------------------------------------------------------------- devices
def load_sounddevice() -> Any:
    """Import sounddevice, turning a missing PortAudio into an actionable error."""
    try:
        import sounddevice
    except OSError as exc:  # PortAudio library not found
        raise DeviceError(
            f"audio input unavailable ({exc}): install PortAudio with "
            "'sudo apt-get install libportaudio2' (Debian/Ubuntu)"
        ) from None
    return sounddevice


def list_input_devices(sd: Any | None = None) -> list[dict[str, Any]]:
    sd = sd or load_sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as exc:  # PortAudioError
        raise DeviceError(f"cannot list audio devices: {exc}") from None
    result = []
    for index, dev in enumerate(devices):
        if int(dev.get("max_input_channels", 0)) > 0:
            result.append(
                {
                    "index": dev.get("index", index),
                    "name": dev["name"],
                    "channels": int(dev["max_input_channels"]),
                    "default_samplerate": float(dev.get("default_samplerate", 0) or 0),
                }
            )
    return result


def input_devices_or_none(sd: Any | None = None) -> list[dict[str, Any]]:
    """The input devices, or an empty list when there is no PortAudio or no device (a device
    picker shows "system default" then); the reason is logged, not raised."""
    try:
        return list_input_devices(sd)
    except Exception as exc:  # DeviceError, a missing PortAudio
        logger.info("no input devices: %s", exc)
        return []


def resolve_input_device(spec: str | int | None, sd: Any | None = None) -> dict[str, Any]:
    """Find an input device by index, exact name or unique name fragment."""
    sd = sd or load_sounddevice()
    inputs = list_input_devices(sd)
    if not inputs:
        raise DeviceError("no audio input device found: connect a microphone and retry")
    if spec is None or spec == "":
        try:
            default = sd.default.device[0]
        except Exception:
            default = None
        for dev in inputs:
            if default is not None and dev["index"] == default:
                return dev
        return inputs[0]
    if isinstance(spec, int) or str(spec).isdigit():
        for dev in inputs:
            if dev["index"] == int(spec):
                return dev
        raise DeviceError(f"no input device with index {spec}: see 'scribe devices'")
    exact = [d for d in inputs if d["name"] == spec]
    if exact:
        return exact[0]
    partial = [d for d in inputs if str(spec).lower() in d["name"].lower()]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        names = ", ".join(repr(d["name"]) for d in partial)
        raise DeviceError(f"input device {spec!r} is ambiguous: {names}")
    raise DeviceError(f"no input device named {spec!r}: see 'scribe devices'")


class SoundDeviceSource:
    """Microphone input through PortAudio at the device's native rate, resampled.

    ``sd`` is the sounddevice module; tests inject a fake one that plays a file.
    ``stall_timeout_s``: if no audio arrives for this long, the device is considered
    lost (unplugged) and :class:`DeviceLostError` is raised from :meth:`chunks`.
    """

    live = True

    def __init__(
        self,
        device: str | int | None = None,
        *,
        sd: Any | None = None,
        samplerate: float | None = None,
        block_s: float = 0.05,
        stall_timeout_s: float = 2.0,
    ) -> None:
        self._sd = sd or load_sounddevice()
        self.device = resolve_input_device(device, self._sd)
        self.samplerate = int(samplerate or self.device["default_samplerate"] or SAMPLE_RATE)
        self.channels = 1 if self.device["channels"] < 2 else 2
        self.block_s = block_s
        self.stall_timeout_s = stall_timeout_s
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._closed = threading.Event()
        self._stream: Any = None
        self.overflows = 0

    @property
    def name(self) -> str:
        return str(self.device["name"])

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.overflows += 1
        self._queue.put(np.array(indata, dtype=np.float32, copy=True))

    def _finished(self) -> None:  # PortAudio calls this when the stream stops
        self._queue.put(None)

    def _open(self) -> None:
        try:
            self._stream = self._sd.InputStream(
                device=self.device["index"],
                channels=self.channels,
                samplerate=self.samplerate,
                dtype="float32",
                blocksize=max(1, int(self.samplerate * self.block_s)),
                callback=self._callback,
                finished_callback=self._finished,
            )
            self._stream.start()
        except Exception as exc:  # PortAudioError: busy device, unsupported rate ...
            raise DeviceError(
                f"cannot open input device {self.name!r} at {self.samplerate} Hz: {exc}"
            ) from None

    def chunks(self) -> Iterator[AudioChunk]:
        self._open()
        resampler = Resampler(self.samplerate, self.channels)
        position = 0
        try:
            while not self._closed.is_set():
                try:
                    block = self._queue.get(timeout=self.stall_timeout_s)
                except queue.Empty:
                    if self._closed.is_set():
                        break
                    raise DeviceLostError(
                        f"input device {self.name!r} stopped delivering audio "
                        f"(unplugged?) after {position / SAMPLE_RATE:.1f} s"
                    ) from None
                if block is None:
                    if self._closed.is_set():
                        break
                    raise DeviceLostError(
                        f"input device {self.name!r} stopped (unplugged?) after "
                        f"{position / SAMPLE_RATE:.1f} s"
                    )
                out = resampler.process(block)
                if len(out):
                    yield AudioChunk(out, position / SAMPLE_RATE)
                    position += len(out)
            tail = resampler.flush()
            if len(tail):
                yield AudioChunk(tail, position / SAMPLE_RATE)
        finally:
            self._stop()

    def _stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:  # the device may already be gone
                logger.debug("closing the input stream failed", exc_info=True)

    def close(self) -> None:
        self._closed.set()
        self._queue.put(None)


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of a block in dBFS (-100 for silence)."""
    if len(samples) == 0:
        return -100.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(-100.0, 20.0 * float(np.log10(rms))) if rms > 0 else -100.0


class ArraySource:
    """16 kHz mono samples already in memory as an offline :class:`AudioSource` (chunks as fast
    as the transcriber takes them): a clip of a benchmark, a microphone test's recording."""

    live = False
    problem = None

    def __init__(self, audio: np.ndarray, chunk_s: float = 0.1) -> None:
        self.audio = audio
        self.step = max(1, int(chunk_s * SAMPLE_RATE))
        self._closed = False

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def chunks(self) -> Iterator[AudioChunk]:
        for i in range(0, len(self.audio), self.step):
            if self._closed:
                return
            yield AudioChunk(self.audio[i : i + self.step], i / SAMPLE_RATE)

    def close(self) -> None:
        self._closed = True

    def wipe(self) -> None:
        self.audio = np.zeros(0, dtype=np.float32)


class GatedSource:
    """A live source with Pause and a level meter.

    While paused, what the device hears is dropped (not recorded); the chunks that are
    kept are re-timed so the session's audio has no gap. ``on_level`` gets the dBFS of
    every block, paused or not, so the meter shows the microphone works.
    """

    def __init__(self, source: AudioSource, on_level: Callable[[float], None] | None = None) -> None:
        self.source = source
        self.live = source.live
        self.paused = threading.Event()
        self._on_level = on_level

    @property
    def problem(self) -> Exception | None:
        return getattr(self.source, "problem", None)

    def chunks(self) -> Iterator[AudioChunk]:
        position = 0.0
        for chunk in self.source.chunks():
            if self._on_level is not None:
                self._on_level(level_dbfs(chunk.samples))
            if self.paused.is_set():
                continue
            yield AudioChunk(chunk.samples, position)
            position += chunk.duration

    def close(self) -> None:
        self.source.close()

    def wipe(self) -> None:
        wipe = getattr(self.source, "wipe", None)
        if wipe is not None:
            wipe()


class PushSource:
    """Audio pushed in by another thread (a phone's WebSocket on the edge server) as a live
    :class:`AudioSource`. :meth:`push` takes 16 kHz mono float32 samples in order;
    :meth:`chunks` yields them to the transcriber and waits while none are there (a phone
    reconnecting is not a lost device), until :meth:`close`. Everything stays in memory;
    :attr:`backlog_s` says how much audio waits for the transcriber (admission control)."""

    live = True
    problem = None

    def __init__(self) -> None:
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._queued = 0
        self.received = 0  # samples pushed in all

    @property
    def backlog_s(self) -> float:
        return self._queued / SAMPLE_RATE

    def push(self, samples: np.ndarray) -> None:
        if self._closed.is_set() or not len(samples):
            return
        with self._lock:
            self._queued += len(samples)
            self.received += len(samples)
        self._queue.put(np.asarray(samples, dtype=np.float32))

    def chunks(self) -> Iterator[AudioChunk]:
        position = 0
        while True:
            block = self._queue.get()
            if block is None:
                return
            with self._lock:
                self._queued -= len(block)
            yield AudioChunk(block, position / SAMPLE_RATE)
            position += len(block)

    def close(self) -> None:
        """No more audio: what was pushed is still transcribed, then :meth:`chunks` ends."""
        if not self._closed.is_set():
            self._closed.set()
            self._queue.put(None)

    def wipe(self) -> None:
        """Drop what was not transcribed yet and end."""
        self._closed.set()
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            self._queued = 0
        self._queue.put(None)
