"""The clinician's voice profile: one averaged voice embedding in a small JSON file.

It holds no audio and nothing about a patient: 256 numbers, when it was made, how much speech
it came from and how clean that was. It is biometric data about the clinician, so the file is
written with mode 0600, is used only on this machine, and ``scribe voice delete`` (or the
desktop app's Stemmeprofil page) removes it. Its default place is the user's data directory.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from asr.errors import ScribeError, printable
from asr.speakers.encoder import EMBEDDING_SIZE, WEIGHTS_SHA256

FORMAT = "ambient-scribe-voice-profile"
VERSION = 1
ENCODER = "resemblyzer-0.1.4-ge2e"
FIX = "make a new one with: scribe voice enroll --mic (or --file AUDIO)"


class ProfileError(ScribeError):
    """A voice profile is missing, corrupt, or not one of this program's."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class VoiceProfile:
    embedding: np.ndarray
    created: str  # ISO 8601, UTC
    speech_s: float
    snr_db: float
    consistency: float  # mean similarity of the recording's 3 s pieces to the profile

    def to_json(self) -> dict[str, object]:
        d = {k: v for k, v in asdict(self).items() if k != "embedding"}
        return {"format": FORMAT, "version": VERSION, "encoder": ENCODER, "encoder_sha256": WEIGHTS_SHA256, **d,
                "embedding": [round(float(v), 7) for v in self.embedding]}

    def summary(self) -> dict[str, object]:
        """What ``scribe voice show`` prints (no numbers of the voice itself)."""
        return {"created": self.created, "speech_s": round(self.speech_s, 1), "snr_db": round(self.snr_db, 1),
                "consistency": round(self.consistency, 3)}


def default_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("ambient-scribe", appauthor=False)) / "voice-profile.json"


def save(profile: VoiceProfile, path: Path) -> Path:
    """Write the profile (0600, atomically: a half-written file never replaces a good one)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(profile.to_json(), fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        raise ProfileError(f"cannot write the voice profile {printable(str(path))}: {exc.strerror or exc}") from None
    return path


def load(path: Path) -> VoiceProfile:
    """Read and check a profile; a one-line :class:`ProfileError` naming the fix otherwise."""
    where = printable(str(path))
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(f"no voice profile at {where}: {FIX}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read the voice profile {where} ({type(exc).__name__}): {FIX}") from None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ProfileError(f"{where} is not a voice profile (not JSON): {FIX}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ProfileError(f"{where} is not a voice profile of ambient-scribe: {FIX}")
    if doc.get("version") != VERSION or doc.get("encoder") != ENCODER:
        raise ProfileError(f"{where} was made by another version or voice encoder: {FIX}")
    try:
        emb = np.asarray(doc["embedding"], dtype=np.float32)
        profile = VoiceProfile(emb, str(doc["created"]), float(doc["speech_s"]), float(doc["snr_db"]),
                               float(doc["consistency"]))
    except (KeyError, TypeError, ValueError):
        raise ProfileError(f"the voice profile {where} is damaged: {FIX}") from None
    norm = float(np.linalg.norm(emb)) if emb.shape == (EMBEDDING_SIZE,) else 0.0
    if emb.shape != (EMBEDDING_SIZE,) or not math.isfinite(norm) or abs(norm - 1.0) > 0.01:
        raise ProfileError(f"the voice profile {where} is damaged: {FIX}")
    return profile


def delete(path: Path) -> bool:
    """Remove the profile (overwritten first); False if there was none."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        size = path.stat().st_size
        with open(path, "r+b") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
    except OSError as exc:
        raise ProfileError(f"cannot delete the voice profile {printable(str(path))}: {exc.strerror or exc}") from None
    return True
