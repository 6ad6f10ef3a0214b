"""Shared fixtures: paths to the test data in the repository, synthetic audio helpers, fakes."""

from __future__ import annotations

from pathlib import Path

import ctranslate2  # noqa: F401, I001
import numpy as np
import pytest

# The heavy native libraries are loaded first, in one fixed order, before any test loads Qt,
# matplotlib or the FHIR server's client stack: a late first import of torch or CTranslate2
# in a process already holding those crashed in CI (segfault inside dlopen, twice, at
# different tests).
import torch  # noqa: F401, I001

ROOT = Path(__file__).resolve().parents[1]
# Everything the tests read is in the repository (origin and licence in the READMEs there):
# real Norwegian speech shipped with the demo, and the six labelled consultations.
SPEECH = ROOT / "app" / "demo"
CONSULTATIONS = ROOT / "tests" / "data" / "consultations"


def consultation_clip(name: str, seconds: float, out: Path, rate: int = 16_000) -> tuple[Path, list[dict], list[dict]]:
    """The first ``seconds`` of a labelled consultation as 16-bit mono WAV at ``rate`` (for the
    tests that run a whole session: a clip keeps CI within its hour on a slow CPU), with the
    timed turns and the turns' texts that end inside it."""
    import json
    import wave

    import yaml

    from asr.sources import decode_file
    from asr.types import SAMPLE_RATE

    audio, _ = decode_file(CONSULTATIONS / f"{name}.flac")
    clip = audio[: int(seconds * SAMPLE_RATE)]
    if rate != SAMPLE_RATE:
        n = int(len(clip) * rate / SAMPLE_RATE)
        clip = np.interp(np.arange(n) * SAMPLE_RATE / rate, np.arange(len(clip)), clip)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(clip, -1, 1) * 32767).astype("<i2").tobytes())
    times = json.loads((CONSULTATIONS / f"{name}.turns.json").read_text(encoding="utf-8"))
    said = yaml.safe_load((CONSULTATIONS / f"{name}.yaml").read_text(encoding="utf-8"))["turns"]
    inside = [i for i, t in enumerate(times) if t["end"] <= seconds]
    return out, [times[i] for i in inside], [said[i] for i in inside]


def _require(path: Path) -> Path:
    if not path.exists():  # a broken checkout, not a missing folder beside the repository
        pytest.fail(f"test data missing from the repository: {path}")
    return path


@pytest.fixture(scope="session")
def king_mp3() -> Path:
    return _require(SPEECH / "king.mp3")


@pytest.fixture(scope="session")
def king_txt() -> Path:
    return _require(SPEECH / "king.txt")


@pytest.fixture(scope="session")
def king_audio(king_mp3: Path) -> np.ndarray:
    from asr.sources import decode_file

    audio, problem = decode_file(king_mp3)
    assert problem is None
    return audio


@pytest.fixture(scope="session")
def consultations_dir() -> Path:
    return _require(CONSULTATIONS)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded model assembled once into a session cache (real wheels)."""
    from asr.models import WHISPER_BASE, assemble

    cache = tmp_path_factory.mktemp("model-cache")
    assemble(WHISPER_BASE, cache)
    return cache


@pytest.fixture(scope="session")
def engine(model_cache: Path):
    from asr.engine import AsrConfig, AsrEngine

    return AsrEngine(AsrConfig(device="cpu"), cache_dir=model_cache)


# -- a real FHIR server (sekmet-fhir) for the EPJ tests, started once per test run ---------
from collections.abc import Iterator  # noqa: E402

from tests.fhir_server import FaultProxy, FhirServer, sekmet_server  # noqa: E402
from tests.keyrings import memory_keyring  # noqa: E402, F401 (fixture for every test module)

CLIENT = {"client_id": "scribe-test", "client_secret": "s3cret-for-tests", "scopes": "system/*.*"}
READ_ONLY = {"client_id": "scribe-readonly", "client_secret": "ro-secret-for-tests", "scopes": "system/*.read"}


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with sekmet_server(Path(tmp_path_factory.mktemp("sekmet"))) as server:
        yield server


@pytest.fixture(scope="session")
def fhir_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with sekmet_server(Path(tmp_path_factory.mktemp("sekmet-auth")), clients=[CLIENT, READ_ONLY]) as server:
        yield server


@pytest.fixture
def proxy(fhir_server: FhirServer) -> Iterator[FaultProxy]:
    p = FaultProxy(fhir_server.base_url.removesuffix("/fhir")).start()
    yield p
    p.stop()
