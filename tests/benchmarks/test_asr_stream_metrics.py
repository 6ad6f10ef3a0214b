"""The streaming benchmark's display latency (issue #20): which event first showed a word."""

from __future__ import annotations

import pytest

from asr.types import Segment, Tentative, Word
from benchmarks.asr_stream import display_latencies, drug_recognition


def seg(words: list[tuple[str, float, float]], emitted_at: float) -> Segment:
    ws = tuple(Word(" " + w, a, b, 0.9) for w, a, b in words)
    return Segment(0, ws[0].start, ws[-1].end, " ".join(w for w, _, _ in words), ws, emitted_at)


def test_a_word_is_shown_by_the_first_tentative_that_has_it_in_place() -> None:
    s = seg([("hun", 0.0, 0.3), ("bruker", 0.4, 0.8), ("metformin", 0.9, 1.5)], emitted_at=3.0)
    tentatives = [
        Tentative("hun bruk", 0.0, 0.7, 0.9),  # 'hun' shown at 0.9
        Tentative("hun bruker met", 0.0, 1.2, 1.5),  # 'bruker' at 1.5
        Tentative("Hun bruker Metformin.", 0.0, 1.6, 2.0),  # 'metformin' at 2.0 (case, punctuation)
    ]
    assert display_latencies([s], tentatives) == pytest.approx([0.6, 0.7, 0.5])


def test_a_word_the_tentatives_never_had_waits_for_its_commit() -> None:
    s = seg([("Lachman", 0.0, 0.5), ("positiv", 0.6, 1.0)], emitted_at=2.5)
    assert display_latencies([s], [Tentative("lakmann positiv", 0.0, 1.1, 1.3)]) == pytest.approx([2.0, 0.3])


def test_the_same_word_elsewhere_in_the_audio_does_not_count() -> None:
    a = seg([("og", 0.0, 0.2), ("så", 0.3, 0.5)], emitted_at=1.0)
    b = seg([("og", 5.0, 5.2), ("da", 5.3, 5.5)], emitted_at=7.0)
    # a tentative of the first stretch, and one of the second that misses 'og'
    tentatives = [Tentative("og så", 0.0, 0.6, 0.8), Tentative("da", 4.9, 5.6, 5.9)]
    assert display_latencies([a, b], tentatives) == pytest.approx([0.6, 0.3, 1.8, 0.4])


def test_drug_recognition_counts_mentions_per_substance() -> None:
    ref = "Hun bruker Cipralex og metformin, metformin to ganger daglig."
    assert drug_recognition(ref, "hun bruker escitalopram og metformin to ganger") == (3 - 1, 3)
    assert drug_recognition(ref, "hun bruker sipralex og metforming") == (0, 3)
