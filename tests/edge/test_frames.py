"""The audio frames' header and order, and the push source the edge server feeds (unit tests)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.edge.frames import HEADER, AudioIntake, FrameError, pack_frame, parse_frame
from asr.sources import PushSource


def _ramp(n: int, start: int = 0) -> np.ndarray:
    return ((np.arange(start, start + n) % 30000) - 15000).astype(np.int16)


def test_resends_are_dropped_overlaps_trimmed_gaps_refused() -> None:
    intake = AudioIntake()
    a = intake.take(parse_frame(pack_frame(0, 0, _ramp(1600)), 65544))
    assert len(a) == 1600 and intake.expected == 1600
    assert len(intake.take(parse_frame(pack_frame(1, 0, _ramp(1600)), 65544))) == 0  # a resend
    assert intake.duplicates == 1
    b = intake.take(parse_frame(pack_frame(2, 800, _ramp(1600, 800)), 65544))  # half new
    assert len(b) == 800 and intake.expected == 2400
    np.testing.assert_array_equal((b * 32768).astype(np.int16), _ramp(800, 1600))  # exactly the new half
    with pytest.raises(FrameError) as gap:
        intake.take(parse_frame(pack_frame(3, 4000, _ramp(100)), 65544))
    assert gap.value.code == "gap" and gap.value.extra == {"expected": 2400}
    with pytest.raises(FrameError) as future:
        intake.take(parse_frame(pack_frame(4, 2**31, _ramp(100)), 65544))
    assert future.value.code == "future_offset"
    assert intake.expected == 2400  # refused frames changed nothing


@pytest.mark.parametrize(("data", "code"), [
    (b"", "bad_frame"), (b"\0" * 7, "bad_frame"), (HEADER.pack(0, 0) + b"\0", "bad_frame"),
    (b"\0" * 70000, "frame_too_large"),
])
def test_malformed_frames(data: bytes, code: str) -> None:
    with pytest.raises(FrameError) as err:
        parse_frame(data, 65544)
    assert err.value.code == code and err.value.message


def test_an_empty_frame_is_valid_and_adds_nothing() -> None:
    intake = AudioIntake()
    assert len(intake.take(parse_frame(HEADER.pack(0, 0), 65544))) == 0 and intake.expected == 0


def test_push_source_yields_in_order_counts_backlog_and_wipes() -> None:
    src = PushSource()
    src.push(np.ones(1600, dtype=np.float32))
    src.push(np.full(800, 0.5, dtype=np.float32))
    assert src.backlog_s == pytest.approx(0.15) and src.received == 2400
    chunks = src.chunks()
    first = next(chunks)
    assert first.start == 0.0 and len(first.samples) == 1600 and src.backlog_s == pytest.approx(0.05)
    second = next(chunks)
    assert second.start == pytest.approx(0.1)
    got: list[int] = []
    t = threading.Thread(target=lambda: got.extend(len(c.samples) for c in chunks))
    t.start()  # waits while the phone is away: no DeviceLost
    src.push(np.zeros(320, dtype=np.float32))
    src.close()
    t.join(5)
    assert got == [320] and not t.is_alive()
    src.push(np.zeros(10, dtype=np.float32))  # after close: ignored
    assert src.received == 2720

    wiped = PushSource()
    wiped.push(np.ones(16000, dtype=np.float32))
    wiped.wipe()
    assert wiped.backlog_s == 0 and list(wiped.chunks()) == []
