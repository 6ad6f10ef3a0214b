"""The speaker encoder: resemblyzer's pretrained GE2E voice encoder, run on audio in memory.

The weights (``pretrained.pt``, 17 MB, Apache-2.0) come inside the ``resemblyzer`` wheel
from PyPI, installed without its dependencies (``install.sh``: ``pip install --no-deps
resemblyzer==0.1.4``). Its package is never imported: its audio code needs librosa, numba,
scipy and scikit-learn (about 420 MB) and a source-only ``webrtcvad`` that would replace
``webrtcvad-wheels``. The file is found with :func:`importlib.util.find_spec`, its sha256 is
checked, and only the network (a 3-layer LSTM, 40 → 256, a linear layer, ReLU, L2 norm) runs
here under torch. The 40-band mel frames that feed it are computed in numpy with the same
definition as resemblyzer's librosa call (25 ms Hann window, 10 ms hop, centred, power
spectrum, Slaney mel scale and norm; the filter bank from ``transformers.audio_utils``, which
matches librosa's).

An utterance's embedding is resemblyzer's: the mean of the L2-normalised embeddings of 1.6 s
windows every 0.77 s, renormalised. :meth:`VoiceEncoder.partials` returns the windows' own
embeddings with their times, which is what splits a segment where the voice changes.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import ModelError
from asr.models import verify_file
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
    """Loaded once per process; :meth:`embed` and :meth:`partials` are thread-safe (one lock
    around the network: it is small, a window takes about a millisecond)."""

    def __init__(self, path: Path | None = None) -> None:
        import torch

        path = path or weights_path()
        verify_file(path, WEIGHTS_SHA256, fix=FIX)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        except Exception as exc:
            raise ModelError(f"cannot read the speaker encoder's weights {path}: {type(exc).__name__}; {FIX}") from None
        self._lstm = torch.nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self._linear = torch.nn.Linear(256, EMBEDDING_SIZE)
        self._lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self._linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self._lstm.eval()
        self._linear.eval()
        self._torch = torch
        self._lock = threading.Lock()
        self._mel = _mel_filters()
        self._window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa

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
        torch = self._torch
        with self._lock, torch.inference_mode():
            _, (hidden, _) = self._lstm(torch.from_numpy(windows))
            raw = torch.relu(self._linear(hidden[-1]))
            out = raw / torch.clamp(torch.linalg.norm(raw, dim=1, keepdim=True), min=1e-9)
        return out.numpy().copy()

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


def _mel_filters() -> np.ndarray:
    from transformers.audio_utils import mel_filter_bank

    return mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=N_MELS, min_frequency=0.0,
                           max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney",
                           mel_scale="slaney").astype(np.float32)
