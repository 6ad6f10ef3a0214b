"""The speaker encoder: resemblyzer's pretrained GE2E voice encoder, run on audio in memory.

The weights (``pretrained.pt``, 17 MB, Apache-2.0) come inside the ``resemblyzer`` wheel
from PyPI, installed without its dependencies (``install.sh``: ``pip install --no-deps
resemblyzer==0.1.4``). Its package is never imported: its audio code needs librosa, numba,
scipy and scikit-learn (about 420 MB) and a source-only ``webrtcvad`` that would replace
``webrtcvad-wheels``. The file is found with :func:`importlib.util.find_spec`, its sha256 is
checked, it is read without torch (:func:`read_legacy_checkpoint`: importing torch alone
costs ~150 MB of memory) and only the network (a 3-layer LSTM, 40 → 256, a linear layer,
ReLU, L2 norm) runs here, in numpy. The 40-band mel frames that feed it are computed in numpy with the same
definition as resemblyzer's librosa call (25 ms Hann window, 10 ms hop, centred, power
spectrum, Slaney mel scale and norm; the filter bank from ``transformers.audio_utils``, which
matches librosa's).

An utterance's embedding is resemblyzer's: the mean of the L2-normalised embeddings of 1.6 s
windows every 0.77 s, renormalised. :meth:`VoiceEncoder.partials` returns the windows' own
embeddings with their times, which is what splits a segment where the voice changes.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import ModelError
from asr.models import sha256_file
from asr.types import SAMPLE_RATE

logger = logging.getLogger(__name__)

WEIGHTS_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
RESEMBLYZER = "resemblyzer==0.1.4"
FIX = f"pip install --no-deps --force-reinstall {RESEMBLYZER} (./install.sh does it)"

N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
WINDOW_FRAMES = 160  # 1.6 s per partial
STEP_FRAMES = int(round(SAMPLE_RATE / 1.3 / HOP))  # 77 frames: 1.3 partials per second
MIN_COVERAGE = 0.75
TARGET_DBFS = -30.0
VAD_FRAME = 480  # 30 ms
EMBEDDING_SIZE = 256


def weights_path() -> Path:
    """The installed ``resemblyzer/pretrained.pt`` (its package is not imported)."""
    spec = importlib.util.find_spec("resemblyzer")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "pretrained.pt"
        if path.is_file():
            return path
    raise ModelError(f"the speaker encoder's weights (resemblyzer) are not installed: {FIX}")


@dataclass(frozen=True, slots=True)
class Partial:
    """One 1.6 s window's embedding; ``start``/``end`` in seconds from the audio's start."""

    start: float
    end: float
    embedding: np.ndarray


class VoiceEncoder:
    """Loaded once per process; :meth:`embed` and :meth:`partials` are thread-safe (numpy, no
    shared state after loading)."""

    def __init__(self, path: Path | None = None) -> None:
        path = path or weights_path()
        digest = sha256_file(path)  # 17 MB, ~30 ms; no stamp file next to an installed package
        if digest != WEIGHTS_SHA256:
            raise ModelError(f"checksum mismatch for {path} (sha256 {digest[:12]}…, expected {WEIGHTS_SHA256[:12]}…): {FIX}")
        try:
            state = read_legacy_checkpoint(path)["model_state"]
            self._layers = [
                (state[f"lstm.weight_ih_l{k}"].T.copy(), state[f"lstm.weight_hh_l{k}"].T.copy(),
                 state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"])
                for k in range(3)
            ]
            self._linear_w = state["linear.weight"].T.copy()
            self._linear_b = state["linear.bias"].copy()
        except (KeyError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            raise ModelError(f"cannot read the speaker encoder's weights {path}: {type(exc).__name__}; {FIX}") from None
        self._mel = _mel_filters()
        self._window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa
        from threadpoolctl import ThreadpoolController

        # one BLAS thread for these small products: OpenBLAS's threads spin against the
        # transcriber's for the same two cores (measured under load: 50x slower, 21 s vs 0.4 s)
        self._blas = ThreadpoolController()

    # -- audio → mel frames ---------------------------------------------------------------
    def mel(self, samples: np.ndarray) -> np.ndarray:
        """(frames, 40) power mel spectrogram, frames = 1 + len // 160 (centred)."""
        x = np.pad(np.asarray(samples, dtype=np.float32), N_FFT // 2)
        n = 1 + (len(x) - N_FFT) // HOP
        if n <= 0:
            return np.zeros((0, N_MELS), dtype=np.float32)
        idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
        spec = np.abs(np.fft.rfft(x[idx] * self._window, axis=1)) ** 2
        return (spec @ self._mel).astype(np.float32)

    def _forward(self, windows: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) mel windows → (batch, 256) unit embeddings: the 3-layer LSTM
        (PyTorch's gate order i, f, g, o), the last hidden state of the top layer, a linear
        layer, ReLU, L2 norm."""
        with self._blas.limit(limits=1, user_api="blas"):
            return self._lstm(np.asarray(windows, dtype=np.float32))

    def _lstm(self, x: np.ndarray) -> np.ndarray:
        batch, steps, _ = x.shape
        for w_ih, w_hh, bias in self._layers:
            hidden = w_hh.shape[0]
            gates_in = x @ w_ih + bias  # all steps at once; only the recurrence loops
            h = np.zeros((batch, hidden), dtype=np.float32)
            c = np.zeros((batch, hidden), dtype=np.float32)
            out = np.empty((batch, steps, hidden), dtype=np.float32)
            for t in range(steps):
                g = gates_in[:, t] + h @ w_hh
                i, f = _sigmoid(g[:, :hidden]), _sigmoid(g[:, hidden:2 * hidden])
                cell, o = np.tanh(g[:, 2 * hidden:3 * hidden]), _sigmoid(g[:, 3 * hidden:])
                c = f * c + i * cell
                h = o * np.tanh(c)
                out[:, t] = h
            x = out
        raw = np.maximum(x[:, -1] @ self._linear_w + self._linear_b, 0.0)
        return (raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-9)).astype(np.float32)

    # -- embeddings -----------------------------------------------------------------------
    def partials(self, samples: np.ndarray) -> list[Partial]:
        """Embeddings of 1.6 s windows every ~0.77 s over ``samples`` (16 kHz float32,
        already speech: no trimming here). A clip shorter than a window gives one window of
        its own length."""
        samples = normalize_volume(np.asarray(samples, dtype=np.float32))
        n_frames = 1 + len(samples) // HOP
        if n_frames < WINDOW_FRAMES:
            # shorter than one window: the LSTM runs on what there is (resemblyzer pads with
            # zeros, which makes every short clip sound alike: they clustered together)
            mel = self.mel(samples)
            return [Partial(0.0, len(samples) / SAMPLE_RATE, self._forward(mel[None, :, :])[0])]
        starts = list(range(0, n_frames - WINDOW_FRAMES + STEP_FRAMES + 1, STEP_FRAMES))
        coverage = (len(samples) - starts[-1] * HOP) / (WINDOW_FRAMES * HOP)
        if coverage < MIN_COVERAGE and len(starts) > 1:
            starts.pop()
        need = (starts[-1] + WINDOW_FRAMES) * HOP
        if need > len(samples):
            samples = np.pad(samples, (0, need - len(samples)))
        mel = self.mel(samples)
        windows = np.stack([mel[s:s + WINDOW_FRAMES] for s in starts])
        embeds = self._forward(windows)
        return [Partial(s * HOP / SAMPLE_RATE, (s + WINDOW_FRAMES) * HOP / SAMPLE_RATE, e)
                for s, e in zip(starts, embeds, strict=True)]

    def sliding(self, samples: np.ndarray, window_s: float = 1.0, hop_s: float = 0.25) -> list[Partial]:
        """Embeddings of short windows (``window_s`` every ``hop_s``) in one batch: where in a
        segment the voice changes (each side is the mean of the windows on it)."""
        samples = normalize_volume(np.asarray(samples, dtype=np.float32))
        frames, hop = int(round(window_s * SAMPLE_RATE / HOP)), max(1, int(round(hop_s * SAMPLE_RATE / HOP)))
        mel = self.mel(samples)
        starts = list(range(0, len(mel) - frames + 1, hop))
        if not starts:
            return []
        embeds = self._forward(np.stack([mel[s:s + frames] for s in starts]))
        return [Partial(s * HOP / SAMPLE_RATE, (s + frames) * HOP / SAMPLE_RATE, e)
                for s, e in zip(starts, embeds, strict=True)]

    def embed(self, samples: np.ndarray) -> np.ndarray:
        """One utterance's embedding (unit length), as resemblyzer's ``embed_utterance``."""
        return mean_embedding([p.embedding for p in self.partials(samples)])


def mean_embedding(embeddings: list[np.ndarray] | np.ndarray) -> np.ndarray:
    raw = np.mean(np.asarray(embeddings, dtype=np.float32), axis=0)
    norm = float(np.linalg.norm(raw))
    return (raw / norm if norm > 0 else raw).astype(np.float32)


def normalize_volume(samples: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise quiet audio to ``target_dbfs`` RMS (never lower it), as resemblyzer does."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    if rms <= 0:
        return samples
    change = target_dbfs - 20 * np.log10(rms)
    return samples if change <= 0 else (samples * (10 ** (change / 20))).astype(np.float32)


def speech_only(samples: np.ndarray) -> np.ndarray:
    """``samples`` with long silences cut out: webrtcvad (mode 3) on 30 ms frames, smoothed over
    8 frames and dilated by 6, as resemblyzer's ``trim_long_silences``."""
    import webrtcvad

    n = len(samples) - len(samples) % VAD_FRAME
    if n <= 0:
        return samples[:0]
    pcm = (np.clip(samples[:n], -1, 1) * 32767).round().astype("<i2")
    vad = webrtcvad.Vad(3)
    flags = np.array([vad.is_speech(pcm[i:i + VAD_FRAME].tobytes(), SAMPLE_RATE) for i in range(0, n, VAD_FRAME)],
                     dtype=float)
    width = 8
    padded = np.concatenate((np.zeros((width - 1) // 2), flags, np.zeros(width // 2)))
    smooth = np.convolve(padded, np.ones(width) / width, mode="valid")[:len(flags)]
    mask = np.round(smooth).astype(bool)
    if mask.any():
        mask = np.convolve(mask.astype(float), np.ones(7), mode="full")[3:3 + len(mask)] > 0  # 7-wide dilation
    return samples[:n][np.repeat(mask, VAD_FRAME)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow for large negative x


class _Stored:
    """A tensor storage of a legacy torch checkpoint, filled after the pickle is read."""

    def __init__(self, dtype: np.dtype, size: int) -> None:
        self.dtype = dtype
        self.size = size
        self.data: np.ndarray | None = None


_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "LongStorage": np.int64, "IntStorage": np.int32,
           "HalfStorage": np.float16, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


def read_legacy_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by ``torch.save`` in its legacy (pre-1.6, non-zip) format into
    numpy arrays, without torch (importing torch costs ~150 MB of memory for one small LSTM).

    The format: pickles of the magic number, the protocol version and the system info, then the
    object (tensors as ``torch._utils._rebuild_tensor_v2`` over persistent storage ids), then the
    list of storage keys, then each storage's raw bytes after an 8-byte element count. Only the
    classes a state dict needs are allowed; anything else is refused."""
    storages: dict[str, _Stored] = {}
    tensors: list[tuple[list, _Stored, int, tuple, tuple]] = []

    def rebuild(storage: _Stored, offset: int, size: tuple, stride: tuple, *_: object) -> list:
        holder: list = []
        tensors.append((holder, storage, offset, tuple(size), tuple(stride)))
        return holder

    class Reader(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if module == "torch" and name in _DTYPES:
                return name
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a weights file")

        def persistent_load(self, pid: object) -> _Stored:
            if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
                raise pickle.UnpicklingError("unexpected persistent id")
            _, kind, key, _location, size = pid[:5]
            return storages.setdefault(str(key), _Stored(np.dtype(_DTYPES[str(kind)]), int(size)))

    with open(path, "rb") as fh:
        for _ in range(3):  # magic number, protocol version, system info
            Reader(fh).load()
        obj = Reader(fh).load()
        keys = Reader(fh).load()
        for key in keys:
            size = int.from_bytes(fh.read(8), "little")
            stored = storages[str(key)]
            raw = fh.read(size * stored.dtype.itemsize)
            if len(raw) != size * stored.dtype.itemsize:
                raise EOFError("the weights file is cut short")
            stored.data = np.frombuffer(raw, dtype=stored.dtype)
    for holder, stored, offset, shape, stride in tensors:
        assert stored.data is not None
        item = stored.dtype.itemsize
        strides = tuple(int(s) * item for s in stride)
        holder.append(np.array(np.lib.stride_tricks.as_strided(stored.data[offset:], shape=shape, strides=strides)))
    state = _resolve(obj)
    if not isinstance(state, dict):
        raise ValueError("not a checkpoint dictionary")
    return state


def _resolve(obj: object) -> object:
    if isinstance(obj, list) and len(obj) == 1 and isinstance(obj[0], np.ndarray):
        return obj[0]
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    return obj


def _mel_filters() -> np.ndarray:
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=N_MELS, min_frequency=0.0,
                           max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney",
                           mel_scale="slaney").astype(np.float32)
