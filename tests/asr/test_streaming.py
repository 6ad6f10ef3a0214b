"""StreamingTranscriber policy with a scripted decoder and a scheduled VAD (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from asr.streaming import StreamingOptions, StreamingTranscriber
from asr.types import AudioChunk, Segment, Tentative, Word
from asr.vad import VadOptions
from tests.fakes import ScheduledGate, ScriptedDecoder, ramp_audio


def script(utterances: list[tuple[float, str]], step: float = 0.4) -> tuple[list[Word], list[tuple[float, float]]]:
    words, speech = [], []
    for start, text in utterances:
        t = start
        for w in text.split():
            words.append(Word(" " + w, t, t + step - 0.05, 0.9))
            t += step
        speech.append((start, t))
    return words, speech


def run(utterances, total_s, options=None, chunk_s=0.1, vocabulary_prompt=False):
    words, speech = script(utterances)
    decoder = ScriptedDecoder(words)
    gate = ScheduledGate(speech, VadOptions(end_silence_s=0.5))
    t = StreamingTranscriber(decoder, options or StreamingOptions(), gate=gate)
    audio = ramp_audio(total_s)
    n = int(chunk_s * 16000)
    events, buffer_max = [], 0.0
    for i in range(0, len(audio), n):
        t.insert_audio_chunk(AudioChunk(audio[i : i + n], i / 16000))
        events.extend(t.process_iter())
        buffer_max = max(buffer_max, t.buffer_seconds)
    events.extend(t.finish())
    return t, decoder, words, events, buffer_max


def committed_text(events) -> list[str]:
    return [w.word.strip() for e in events if isinstance(e, Segment) for w in e.words]


def test_every_word_is_committed_once_in_order() -> None:
    utts = [(0.5, "hei og velkommen"), (3.0, "jeg har hatt vondt i kneet siden mars"), (8.0, "ja")]
    t, _, words, events, _ = run(utts, 11.0)
    assert committed_text(events) == [w.word.strip() for w in words]
    assert [s.id for s in t.transcript.segments] == list(range(len(t.transcript.segments)))


def test_short_phrase_commits_when_the_speaker_pauses() -> None:
    t, _, words, events, _ = run([(1.0, "blodtrykket er fint")], 5.0)
    seg = next(e for e in events if isinstance(e, Segment))
    # audio clock: committed within the pause that ends the utterance (+ one chunk)
    assert seg.emitted_at - seg.end <= 0.5 + 0.05 + 0.1 + 0.05
    assert seg.text == "blodtrykket er fint"


def test_long_utterance_commits_by_agreement_before_it_ends() -> None:
    text = " ".join(f"ord{i}" for i in range(40))  # 16 s of continuous speech
    t, decoder, words, events, _ = run([(0.5, text)], 19.0)
    first = next(e for e in events if isinstance(e, Segment))
    assert first.emitted_at < 16.5  # before the utterance ended
    assert any(not c["final"] for c in decoder.calls)
    assert committed_text(events) == [w.word.strip() for w in words]
    # the unstable last word ("~") never reached the transcript
    assert "~" not in t.transcript.text


def test_tentative_text_is_reported_and_cleared() -> None:
    text = " ".join(f"ord{i}" for i in range(20))
    _, _, _, events, _ = run([(0.5, text)], 10.0)
    tentative = [e for e in events if isinstance(e, Tentative)]
    assert any(e.text for e in tentative)
    assert tentative[-1].text == ""


def test_buffer_is_trimmed_for_long_speech() -> None:
    sentences = " ".join(f"setning{i} a{i} b{i} c{i} d{i}." for i in range(16))  # 32 s
    opts = StreamingOptions(max_buffer_s=10.0, hard_max_buffer_s=20.0)
    t, decoder, words, events, buffer_max = run([(0.5, sentences)], 36.0, opts)
    assert buffer_max <= 20.0 + 0.2
    assert committed_text(events) == [w.word.strip() for w in words]
    # decodes after a trim start at a committed sentence end
    later = [c for c in decoder.calls if c["start"] > 1.0]
    assert later


def test_long_silence_drops_the_buffer_short_pause_keeps_context() -> None:
    opts = StreamingOptions(context_gap_s=2.0)
    t, decoder, _, _, _ = run([(0.5, "en to tre"), (3.2, "fire fem"), (9.0, "seks")], 12.0, opts)
    finals = [c for c in decoder.calls if c["final"]]
    assert len(finals) == 3
    assert finals[1]["start"] < 1.0  # the first utterance is still context
    assert finals[2]["start"] > 6.0  # after 4 s of silence the buffer started anew
    assert finals[2]["prompt"].endswith("fire fem")


def test_silence_only_decodes_nothing() -> None:
    t, decoder, _, events, _ = run([], 5.0)
    assert decoder.calls == [] and t.transcript.segments == []
    assert not [e for e in events if isinstance(e, Segment)]


def test_wipe_forgets_audio_and_text() -> None:
    t, _, _, _, _ = run([(0.5, "sensitiv opplysning")], 3.0)
    assert t.transcript.segments
    t.insert_audio_chunk(AudioChunk(ramp_audio(0.5, 3.0), 3.0))
    t.wipe()
    assert t.transcript.segments == [] and t.buffer_seconds == 0.0
    assert t.agreement.committed == [] and t.agreement.tentative == []


@pytest.mark.parametrize("chunk_s", [0.03, 0.25, 1.3])
def test_result_does_not_depend_on_chunk_size(chunk_s: float) -> None:
    utts = [(0.5, "pasienten bruker metformin"), (4.0, "fem hundre milligram to ganger daglig")]
    _, _, words, events, _ = run(utts, 9.0, chunk_s=chunk_s)
    assert committed_text(events) == [w.word.strip() for w in words]


class SkippingDecoder(ScriptedDecoder):
    """Loses the words in ``skip`` whenever the buffer starts before them, like Whisper
    jumping over a stretch of a long buffer; decoded on their own they are found."""

    def __init__(self, words: list[Word], skip: tuple[float, float]) -> None:
        super().__init__(words)
        self.skip = skip

    def decode(self, audio, *, prompt: str, final: bool, speech=None) -> list[Word]:
        t0 = float(audio[0]) * 1000.0
        out = super().decode(audio, prompt=prompt, final=final, speech=speech)
        if t0 < self.skip[0] - 0.5:
            out = [w for w in out if not (self.skip[0] <= w.start + t0 < self.skip[1])]
        return out


def test_speech_the_decoder_skipped_is_rescued_at_the_utterance_end() -> None:
    words, speech = script([(0.5, " ".join(f"ord{i}" for i in range(20)))])  # 0.5-8.5 s
    decoder = SkippingDecoder(words, skip=(3.3, 5.7))
    gate = ScheduledGate(speech, VadOptions(end_silence_s=0.5))
    t = StreamingTranscriber(decoder, StreamingOptions(), gate=gate)
    audio = ramp_audio(11.0)
    events = []
    for i in range(0, len(audio), 1600):
        t.insert_audio_chunk(AudioChunk(audio[i : i + 1600], i / 16000))
        events.extend(t.process_iter())
    events.extend(t.finish())
    # the lost words come back, on their own decode of just that stretch, in time order
    assert [w.word.strip() for w in t.transcript.words] == [w.word.strip() for w in words]
    rescue = [c for c in decoder.calls if c["start"] > 3.0]
    assert rescue and all(c["final"] and c["end"] - c["start"] < 4.0 for c in rescue)


def test_rescue_can_be_disabled() -> None:
    words, speech = script([(0.5, " ".join(f"ord{i}" for i in range(20)))])
    decoder = SkippingDecoder(words, skip=(3.3, 5.7))
    gate = ScheduledGate(speech, VadOptions(end_silence_s=0.5))
    t = StreamingTranscriber(decoder, StreamingOptions(rescue_min_s=0), gate=gate)
    audio = ramp_audio(11.0)
    for i in range(0, len(audio), 1600):
        t.insert_audio_chunk(AudioChunk(audio[i : i + 1600], i / 16000))
        t.process_iter()
    t.finish()
    assert len(t.transcript.words) == len(words) - 6


def test_agree_after_holds_commits_of_short_utterances_until_they_end() -> None:
    utts = [(0.5, " ".join(f"ord{i}" for i in range(15)))]  # a 6 s utterance
    t, _, words, events, _ = run(utts, 9.0, StreamingOptions(agree_after_s=8.0))
    segs = [e for e in events if isinstance(e, Segment)]
    assert len(segs) == 1 and segs[0].emitted_at >= 6.5  # one segment, at the pause
    assert committed_text(events) == [w.word.strip() for w in words]
    # the interim decodes still showed the words as tentative while they were spoken
    assert any(isinstance(e, Tentative) and e.text for e in events)


def test_stale_speech_ends_the_utterance_early() -> None:
    """The gate hears 'speech' (applause) long after the last word: commit anyway."""
    words, _ = script([(0.5, "takk for at dere kom")])  # words end at 2.5 s
    gate = ScheduledGate([(0.5, 12.0)], VadOptions(end_silence_s=0.5))
    first_commit = {}
    for stale in (0.0, 2.0):  # no agreement commits: only the pause or staleness commit
        t = StreamingTranscriber(ScriptedDecoder(words), StreamingOptions(stale_s=stale, agree_after_s=60, tentative_every_s=0),
                                gate=gate)
        audio = ramp_audio(14.0)
        for i in range(0, len(audio), 1600):
            t.insert_audio_chunk(AudioChunk(audio[i : i + 1600], i / 16000))
            for e in t.process_iter():
                if isinstance(e, Segment):
                    first_commit.setdefault(stale, e.emitted_at)
        t.finish()
    assert first_commit[0.0] >= 12.0  # held back until the gate heard the pause
    assert first_commit[2.0] < 8.0  # not held until the noise ends
    assert [w.word.strip() for w in t.transcript.words] == "takk for at dere kom".split()


# -- the two paths (issue #20) ------------------------------------------------------------
def test_short_utterances_get_only_cheap_tentatives_and_one_accurate_decode() -> None:
    utts = [(0.5, "pasienten har hatt hodepine i tre uker nå"), (5.0, "og den er verst om morgenen")]
    t, decoder, words, events, _ = run(utts, 9.5)
    accurate = [c for c in decoder.calls if not c.get("tentative")]
    cheap = [c for c in decoder.calls if c.get("tentative")]
    assert [c["final"] for c in accurate] == [True, True]  # one decode per utterance, at its end
    assert len(cheap) >= 4  # about one per second of speech
    assert committed_text(events) == [w.word.strip() for w in words]
    shown = [e for e in events if isinstance(e, Tentative) and e.text]
    # each tentative says which audio it covers and when it was made (audio clock here)
    assert all(e.start < e.end <= e.emitted_at + 1e-6 for e in shown)
    assert any(e.text.startswith("pasienten har") for e in shown)
    assert t.tentative.calls == len(cheap) and t.accurate.calls == len(accurate)
    assert t.tentative.seconds >= 0.0 and t.accurate.seconds >= 0.0


def test_tentative_text_never_enters_the_transcript() -> None:
    t, _, _, events, _ = run([(0.5, "kneet hovnet opp med en gang etter kampen")], 5.0)
    assert "~" not in t.transcript.text
    last = [e for e in events if isinstance(e, Tentative)][-1]
    assert last.text == ""  # cleared by the commit


def test_tentative_after_a_commit_is_given_the_committed_words_as_context() -> None:
    utts = [(0.5, "blodtrykket var høyt"), (2.6, "så vi økte dosen av amlodipin")]
    _, decoder, _, events, _ = run(utts, 7.0)
    later = [c for c in decoder.calls if c.get("tentative") and c["start"] < 2.6 < c["end"]]
    assert later and later[-1]["prefix"] == "blodtrykket var høyt"
    shown = [e.text for e in events if isinstance(e, Tentative) and e.text]
    assert not any(s.startswith("blodtrykket") for s in shown[-2:])  # the context is not shown again


def test_without_the_cheap_path_no_tentative_decodes_are_made() -> None:
    words, speech = script([(0.5, "hei og velkommen til kontroll i dag")])
    decoder = ScriptedDecoder(words)
    t = StreamingTranscriber(decoder, StreamingOptions(), gate=ScheduledGate(speech), tentative=False)
    audio = ramp_audio(5.0)
    for i in range(0, len(audio), 1600):
        t.insert_audio_chunk(AudioChunk(audio[i : i + 1600], i / 16000))
        t.process_iter()
    t.finish()
    assert decoder.calls and not any(c.get("tentative") for c in decoder.calls)
    assert t.transcript.text == "hei og velkommen til kontroll i dag"


def test_a_burst_of_audio_skips_one_tentative_decode() -> None:
    words, speech = script([(0.5, " ".join(f"ord{i}" for i in range(12)))])
    decoder = ScriptedDecoder(words)
    t = StreamingTranscriber(decoder, StreamingOptions(), gate=ScheduledGate(speech))
    audio = ramp_audio(6.0)
    t.insert_audio_chunk(AudioChunk(audio[: 3 * 16000], 0.0))  # 3 s at once: the worker was behind
    assert not [e for e in t.process_iter() if isinstance(e, Tentative)]
    t.insert_audio_chunk(AudioChunk(audio[3 * 16000 : 3 * 16000 + 1600], 3.0))
    shown = [e for e in t.process_iter() if isinstance(e, Tentative)]
    assert shown and shown[0].end >= 3.09  # the newest audio, at once


class SlowDecoder(ScriptedDecoder):
    def decode_tentative(self, audio, *, prompt: str, prefix: str = "") -> str:
        import time

        time.sleep(0.03)
        return super().decode_tentative(audio, prompt=prompt, prefix=prefix)


@pytest.mark.parametrize("budget", [0.25, 0.005])
def test_the_cheap_path_stays_within_its_budget(budget: float) -> None:
    words, speech = script([(0.5, " ".join(f"ord{i}" for i in range(25)))])  # 10 s of speech
    decoder = SlowDecoder(words)
    opts = StreamingOptions(tentative_budget=budget, agree_after_s=60)
    t = StreamingTranscriber(decoder, opts, gate=ScheduledGate(speech))
    audio = ramp_audio(12.0)
    for i in range(0, len(audio), 1600):
        t.insert_audio_chunk(AudioChunk(audio[i : i + 1600], i / 16000))
        t.process_iter()
    t.finish()
    if budget == 0.25:
        assert t.tentative.calls >= 8  # 0.03 s per call is far within budget: once a second
    else:
        # 0.03 s at 0.5 % of the audio time: at most one decode per 6 s of audio
        assert t.tentative.calls <= 2
        assert t.tentative.seconds / 12.0 <= budget + 0.03 / 12.0


def test_sound_without_new_words_ends_the_utterance_early() -> None:
    """Applause after the last word: the gate still hears 'speech', the tentative text
    stops growing, so the words are committed without waiting for the pause."""
    words, _ = script([(0.5, "takk for at dere kom i dag")])  # words end at 3.3 s
    gate = ScheduledGate([(0.5, 14.0)], VadOptions(end_silence_s=0.5))
    t = StreamingTranscriber(ScriptedDecoder(words), StreamingOptions(agree_after_s=60, tentative_stale_s=2.0), gate=gate)
    audio = ramp_audio(16.0)
    first = None
    for i in range(0, len(audio), 1600):
        t.insert_audio_chunk(AudioChunk(audio[i : i + 1600], i / 16000))
        for e in t.process_iter():
            if isinstance(e, Segment) and first is None:
                first = e
    t.finish()
    assert first is not None and first.emitted_at < 6.5
    assert t.transcript.text == "takk for at dere kom i dag"


def test_thirty_minutes_of_speech_keep_the_state_bounded() -> None:
    """Nothing in the transcriber grows with the length of the consultation except the
    committed transcript itself."""
    utts, t0 = [], 0.5
    while t0 < 30 * 60 - 10:
        utts.append((t0, " ".join(f"w{int(t0)}x{i}" for i in range(8))))  # 3.2 s utterances
        t0 += 4.5
    words, speech = script(utts)
    decoder = ScriptedDecoder(words)
    t = StreamingTranscriber(decoder, StreamingOptions(), gate=ScheduledGate(speech))
    step = 16000
    peak = {"buffer": 0.0, "committed": 0, "spans": 0, "heard": 0, "pre_roll": 0}
    for i in range(0, 30 * 60 * 16000, step):
        t.insert_audio_chunk(AudioChunk(ramp_audio(1.0, i / 16000), i / 16000))
        t.process_iter()
        peak["buffer"] = max(peak["buffer"], t.buffer_seconds)
        peak["committed"] = max(peak["committed"], len(t.agreement.committed))
        peak["spans"] = max(peak["spans"], len(t._spans))
        peak["heard"] = max(peak["heard"], len(t._heard))
        peak["pre_roll"] = max(peak["pre_roll"], len(t._pre_roll))
    t.finish()
    assert len(t.transcript.words) == len(words)
    assert peak["buffer"] <= StreamingOptions().hard_max_buffer_s + 1.0
    assert peak["committed"] <= 80 and peak["spans"] <= 10 and peak["heard"] <= 10 and peak["pre_roll"] <= 20
    assert len(t._prompt()) <= StreamingOptions().prompt_chars


def test_a_pause_inside_an_utterance_commits_its_words_without_losing_audio() -> None:
    """A 0.3 s pause (a comma) after 2.4 s of speech: the words before it are committed a
    second later, with every sample of the audio kept in the buffer (none zero-filled)."""
    utts = [(0.5, "hun har brukt metformin i to år"), (3.6, "og tåler det godt nå")]  # pause 3.3-3.6 s
    words, speech = script(utts)
    decoder = ScriptedDecoder(words)
    gate = ScheduledGate(speech, VadOptions(end_silence_s=0.5, pause_s=0.21))
    t = StreamingTranscriber(decoder, StreamingOptions(pause_commit_after_s=2.0, pause_lookahead_s=1.0), gate=gate)
    audio = ramp_audio(8.0)
    segments = []
    for i in range(0, len(audio), 1600):
        t.insert_audio_chunk(AudioChunk(audio[i : i + 1600], i / 16000))
        segments += [e for e in t.process_iter() if isinstance(e, Segment)]
        if t.buffer_seconds:
            np.testing.assert_allclose(t._buf, ramp_audio(t.buffer_seconds, t._buf_start), atol=1e-6)
    segments += t.finish()
    assert segments[0].text == "hun har brukt metformin i to år"
    assert 4.3 <= segments[0].emitted_at < 5.0  # at the pause plus one second, not at the end
    assert " ".join(s.text for s in segments) == "hun har brukt metformin i to år og tåler det godt nå"
