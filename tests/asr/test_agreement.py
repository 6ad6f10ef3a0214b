from __future__ import annotations

from asr.agreement import LocalAgreement, normalize_word
from asr.types import Word


def words(text: str, start: float = 0.0, step: float = 0.5) -> list[Word]:
    return [Word(" " + w, start + i * step, start + (i + 1) * step, 0.9) for i, w in enumerate(text.split())]


def texts(ws: list[Word]) -> list[str]:
    return [w.word.strip() for w in ws]


def test_first_hypothesis_commits_nothing() -> None:
    la = LocalAgreement()
    assert la.insert(words("pasienten har vondt")) == []
    assert texts(la.tentative) == ["pasienten", "har", "vondt"]


def test_commits_longest_common_prefix_of_two_hypotheses() -> None:
    la = LocalAgreement()
    la.insert(words("pasienten har vondt i"))
    committed = la.insert(words("pasienten har vondt og feber"))
    assert texts(committed) == ["pasienten", "har", "vondt"]
    assert texts(la.tentative) == ["og", "feber"]
    assert la.last_committed_end == 1.5


def test_comparison_ignores_case_and_punctuation() -> None:
    assert normalize_word(" Amlodipin,") == normalize_word("amlodipin")
    assert normalize_word(" blåse") != normalize_word("blase")
    la = LocalAgreement()
    la.insert(words("Hei, du"))
    assert texts(la.insert(words("hei du"))) == ["hei", "du"]


def test_committed_words_are_not_committed_again() -> None:
    la = LocalAgreement()
    la.insert(words("en to tre"))
    la.insert(words("en to tre fire"))  # commits en to tre
    # the buffer still holds the committed audio: the decoder re-recognises it
    assert la.insert(words("en to tre fire fem")) == words("en to tre fire fem")[3:4]
    assert texts(la.committed) == ["en", "to", "tre", "fire"]


def test_repeated_tail_with_shifted_times_is_skipped_by_ngram() -> None:
    la = LocalAgreement()
    la.insert(words("a b c"))
    la.insert(words("a b c"))
    # the re-recognised "b c" now starts just after the committed end
    shifted = [Word(" b", 1.6, 1.9, 0.9), Word(" c", 1.9, 2.2, 0.9), Word(" d", 2.2, 2.5, 0.9)]
    la.insert(shifted)
    assert texts(la.tentative) == ["d"]


def test_commit_all_flushes_tentative_or_a_final_hypothesis() -> None:
    la = LocalAgreement()
    la.insert(words("god morgen"))
    assert texts(la.commit_all()) == ["god", "morgen"]
    assert la.tentative == []
    final = la.commit_all(words("god morgen doktor"))
    assert texts(final) == ["doktor"]


def test_forget_before_and_reset_keep_the_commit_time() -> None:
    la = LocalAgreement()
    la.insert(words("a b c d"))
    la.insert(words("a b c d"))
    la.forget_before(1.0)
    assert texts(la.committed) == ["c", "d"]
    la.reset()
    assert la.committed == [] and la.tentative == []
    assert la.last_committed_end == 2.0
    # words in already committed time are still refused after a reset
    assert la.commit_all(words("x", start=0.5)) == []
