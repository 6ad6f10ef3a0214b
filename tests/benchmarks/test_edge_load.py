"""The edge server's load benchmark (issue #21): its metrics, and a short ingest run against a
real server process (nothing about its speed is asserted)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.edge_load import (
    AckMatcher,
    CountingTranscriber,
    Phone,
    capacity,
    commit_latencies,
    ingest_table,
    kept_real_time,
    marginal_memory,
    memory_per_consultation,
    not_transcribed,
    run_ingest,
    tail_lag,
    whisper_row,
    within,
)


def test_an_ack_is_timed_from_the_frame_that_ends_at_its_offset() -> None:
    m = AckMatcher()
    for k in range(5):  # 100 ms frames of 1600 samples, sent at 10.0, 10.1, ...
        m.sent((k + 1) * 1600, 10.0 + 0.1 * k)
    assert m.acked(1600, 10.02) == pytest.approx(0.02)
    assert m.acked(4800, 10.25) == pytest.approx(0.05)  # the frame ending at 4800 left at 10.2
    assert m.acked(4000, 10.3) is None  # no frame ends there (and it goes back)
    assert m.acked(8000, 10.45) == pytest.approx(0.05)
    assert m.latencies == pytest.approx([0.02, 0.05, 0.05])
    assert (m.unmatched, m.backwards) == (1, 1)


def test_commit_latency_counts_from_when_the_segments_audio_was_sent() -> None:
    # stream started at 100.0: a segment ending 2.0 s into the audio was all sent at 102.0
    assert commit_latencies(100.0, [(103.5, 1.0, 2.0), (110.0, 2.0, 9.0)]) == pytest.approx([1.5, 1.0])


def test_the_tail_lag_is_the_median_of_the_last_tentatives_before_stop() -> None:
    t0 = 50.0
    positions = [(t0 + e + lag, e) for e, lag in [(1, 0.2), (2, 0.3), (3, 5.0), (4, 5.5), (5, 6.0), (6, 6.5), (7, 7.0)]]
    assert tail_lag(t0, positions) == pytest.approx(6.0)
    assert tail_lag(t0, positions, until=t0 + 3.0 + 5.0) == pytest.approx(0.3)  # only what came before stop
    assert tail_lag(t0, []) is None


def test_real_time_is_a_short_tail_lag() -> None:
    assert kept_real_time(1.0) and kept_real_time(4.0)
    assert not kept_real_time(5.0)  # the screen was behind when the recording ended
    assert not kept_real_time(None)  # nothing was ever shown


def test_untranscribed_audio_is_what_the_server_took_but_its_transcriber_never_got() -> None:
    assert not_transcribed({"session": "a", "received_s": 90.0, "transcribed_s": 86.5}) == pytest.approx(3.5)
    assert not_transcribed({"session": "a", "received_s": 90.0, "transcribed_s": 90.0}) == 0.0
    assert not_transcribed({"session": "a", "received_s": 90.0, "transcribed_s": None}) is None  # still recording
    assert not_transcribed(None) is None


def test_memory_per_consultation() -> None:
    assert memory_per_consultation(700.0, 400.0, 3) == pytest.approx(100.0)
    assert marginal_memory(500.0, 700.0, 3) == pytest.approx(100.0)
    assert marginal_memory(500.0, 500.0, 1) == 0.0


def test_capacity_is_the_largest_n_of_the_rounds_within_the_baseline() -> None:
    rows = [{"n": 1, "commit_p95_s": 2.0}, {"n": 2, "commit_p95_s": 2.9}, {"n": 3, "commit_p95_s": 3.1},
            {"n": 4, "commit_p95_s": 2.5}]
    for row in rows:
        row["within"] = within(row, 2.0, 1.5)
    assert [r["within"] for r in rows] == [True, True, False, True]
    assert capacity(rows) == 2  # the rounds stop at the first one outside
    assert not within({"n": 2, "commit_p95_s": None}, 2.0, 1.5)  # no segment committed
    assert capacity([{"n": 1, "within": False}]) is None


def test_the_counting_transcriber_counts_samples_and_spots_a_hole() -> None:
    from asr.types import AudioChunk

    t = CountingTranscriber()
    for start in (0.0, 0.1, 0.3):  # the third chunk starts 0.1 s after the second ended
        t.insert_audio_chunk(AudioChunk(np.zeros(1600, dtype=np.float32), start))
    assert (t.samples, t.chunks, t.gaps) == (4800, 3, 1)
    assert t.process_iter() == [] and t.finish() == []


def test_a_whisper_round_is_summarised_from_what_the_phones_received() -> None:
    phones = []
    for lag in (1.0, 6.0):
        p = Phone(len(phones))
        p.t0, p.stop_at = 0.0, 100.0
        p.segments = [(3.0, 0.0, 2.0), (9.0, 2.0, 6.0)]
        p.tentatives = [(e + lag, e) for e in range(1, 8)]
        p.draft_at = 104.0
        phones.append(p)
    row = whisper_row(2, phones, idle_mb=400.0, peak_mb=600.0)
    assert row["segments"] == 4 and row["commit_p50_s"] == pytest.approx(2.0)
    assert row["realtime"] == [True, False] and not row["all_realtime"]
    assert row["mb_per_consultation"] == pytest.approx(100.0)
    assert row["stop_to_draft_s"] == [4.0, 4.0]
    assert row["tentative_lag_p50_s"] == pytest.approx(3.5)  # lags 1.0 and 6.0, seven each


def test_a_short_ingest_run_measures_acks_and_finds_no_gap() -> None:
    for module in ("fastapi", "uvicorn", "websockets", "trustme", "httpx"):
        pytest.importorskip(module)
    r = run_ingest(phones=5, seconds=3.0)
    assert r["connected"] == 5 and r["frames_sent"] == 5 * 30
    assert r["acks"] >= 5 and r["acks_unmatched"] == 0
    assert None not in (r["ack_p50_ms"], r["ack_p95_ms"], r["ack_max_ms"])
    assert r["sessions_no_gap"] == 5 and r["duplicates"] == 0 and r["errors"] == {}
    assert r["counted_total"] == r["samples_sent"] == 5 * 3 * 16000
    assert r["pass"]["no_gap"]
    text = ingest_table(r)
    assert "ack latency ms" in text and "5 / 5 consultations" in text
