"""The microphone path with the sounddevice module injected: a fake device 'hears' a file."""

from __future__ import annotations

import numpy as np
import pytest

from asr.errors import DeviceError, DeviceLostError
from asr.sources import SoundDeviceSource, resolve_input_device
from asr.types import SAMPLE_RATE
from tests.fakes import FakeSoundDevice, to_native


@pytest.fixture(scope="module")
def native(king_audio: np.ndarray) -> np.ndarray:
    return to_native(king_audio[: SAMPLE_RATE * 4], 48_000, 2)


def test_device_by_index_name_fragment_and_default(native: np.ndarray) -> None:
    sd = FakeSoundDevice(native)
    assert resolve_input_device(1, sd)["name"] == "Jabra Speak 510 USB"
    assert resolve_input_device("jabra", sd)["index"] == 1
    assert resolve_input_device(None, sd)["index"] == 1
    with pytest.raises(DeviceError, match="no input device named 'Shure'"):
        resolve_input_device("Shure", sd)
    with pytest.raises(DeviceError, match="index 7"):
        resolve_input_device(7, sd)


def test_no_input_device() -> None:
    sd = FakeSoundDevice(np.zeros((10, 1), np.float32), devices=[{"name": "HDMI", "max_input_channels": 0}])
    with pytest.raises(DeviceError, match="no audio input device"):
        SoundDeviceSource(sd=sd)


def test_busy_device_and_unsupported_rate(native: np.ndarray) -> None:
    with pytest.raises(DeviceError, match="cannot open input device"):
        next(SoundDeviceSource(sd=FakeSoundDevice(native, busy=True)).chunks())
    with pytest.raises(DeviceError, match="44100 Hz"):
        next(SoundDeviceSource(sd=FakeSoundDevice(native), samplerate=44100).chunks())


def test_native_48k_stereo_arrives_as_16k_mono(native: np.ndarray, king_audio: np.ndarray) -> None:
    src = SoundDeviceSource("Jabra", sd=FakeSoundDevice(native), stall_timeout_s=1.0)
    chunks = []
    with pytest.raises(DeviceLostError):  # the fake device stops at the end of the file
        for c in src.chunks():
            chunks.append(c)
    audio = np.concatenate([c.samples for c in chunks])
    assert len(audio) / SAMPLE_RATE == pytest.approx(4.0, abs=0.1)
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and starts[0] == 0.0
    ref = king_audio[: len(audio)]
    assert np.corrcoef(audio[: len(ref)], ref)[0, 1] > 0.95


def test_a_hung_device_is_reported_after_the_stall_timeout(native: np.ndarray) -> None:
    sd = FakeSoundDevice(native, vanish_after_blocks=20, vanish_silently=True)
    src = SoundDeviceSource(sd=sd, stall_timeout_s=0.3)
    got = 0.0
    with pytest.raises(DeviceLostError, match="stopped delivering audio"):
        for c in src.chunks():
            got += c.duration
    assert got == pytest.approx(20 * 0.05, abs=0.05)
