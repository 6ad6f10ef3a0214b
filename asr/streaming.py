"""Streaming transcription in two paths: accurate commits at pauses, cheap tentative text.

The push contract follows ufal/whisper_streaming::

    t = StreamingTranscriber(decoder)
    for chunk in source:
        t.insert_audio_chunk(chunk)
        for event in t.process_iter():   # Segment (committed) or Tentative
            ...
    for segment in t.finish():           # flushes what is still tentative
        ...

Two paths share one decoder (one worker, so their costs add up and are budgeted):

* **The accurate path** makes the record. When the gate sees an utterance end, the buffer
  (the utterance plus up to ``max_buffer_s`` of committed audio before it as context) is
  decoded with the full beam, word alignment and the committed text as prompt, and
  everything is committed. Optionally (``pause_commit_after_s``, off by default: the
  coverage test lost a turn with it) also at a short pause inside a long utterance. Only
  an utterance longer than ``agree_after_s`` is also committed while it goes on, by
  LocalAgreement-2 over accurate re-decodes every ``min_chunk_s`` (Whisper's window is 30 s).
  When the tentative text stops growing for ``tentative_stale_s`` of sound, the utterance is
  committed there.
* **The tentative path** only feeds the screen. Every ``tentative_every_s`` of new speech
  the audio since the last committed word (at most ``tentative_window_s``) is decoded
  greedily, without timestamps and without word alignment, and reported as a
  :class:`Tentative` that replaces the previous one. It is skipped when the audio arrived
  in a burst (the worker was behind), and its cadence stretches so that it never uses
  more than ``tentative_budget`` of the audio time. With ``tentative_every_s = 0`` (or
  ``tentative=False``, e.g. a file read at once) there is no cheap path: utterances are
  committed at their ends (LocalAgreement only beyond ``agree_after_s``; with
  ``agree_after_s = 0`` every utterance gets re-decodes, issue #2's single path).

Measured on ``king.mp3`` (benchmarks/README.md): the accurate path alone is within a
few words of offline decoding, and the cheap path costs about 0.1 s per call.

Details:

* The VAD gate marks speech. Silence is not decoded; a silence longer than
  ``context_gap_s`` empties the buffer, so only a short pause between two utterances
  stays in it.
* LocalAgreement-2 (long utterances, or without the cheap path) commits the longest
  common prefix of two consecutive re-decodes; the rest is shown as tentative.
* When the gate sees the utterance end (a pause of ``VadOptions.end_silence_s``), the
  buffer is decoded once more with the full beam and everything is committed. Short
  phrases therefore commit right after the speaker pauses.
* Committed audio stays in the buffer as context for the next utterance (Whisper is
  far more accurate with a few seconds of preceding speech than on an isolated phrase)
  until the buffer exceeds ``max_buffer_s``; it is then trimmed at the end of a
  committed sentence (or word). Words re-recognised in that context are skipped by
  time and by n-gram overlap.
* The prompt is the vocabulary list plus the last ``prompt_chars`` of committed text
  whose audio has left the buffer.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from asr.agreement import LocalAgreement, normalize_word
from asr.decoder import Decoder
from asr.types import SAMPLE_RATE, AudioChunk, Segment, Tentative, Transcript, Word, words_text
from asr.vad import GateEvent, VadGate, VadOptions

logger = logging.getLogger(__name__)

Event = Segment | Tentative
_SENTENCE_END = (".", "?", "!", "…")


@dataclass(frozen=True, slots=True)
class StreamingOptions:
    """Streaming policy.

    Attributes:
        min_chunk_s: new speech (s) that triggers an interim re-decode.
        first_chunk_s: speech (s) an utterance needs before its first interim decode
            (very short buffers give unreliable hypotheses).
        agree_after_s: an utterance shorter than this is committed only when it ends
            (with the full-beam decode); longer ones also commit by agreement while they
            go on. With the cheap path on, shorter utterances get no accurate re-decodes
            at all; without it their re-decodes only update the tentative text.
        stale_s: if an interim decode finds no words in the last ``stale_s`` seconds
            of what the gate called speech, the utterance is ended there (0: never).
        interim_context_s: interim decodes start this long before the first
            uncommitted word (None: the whole buffer); cheaper, the finals still see it all.
        max_buffer_s: beyond this the buffer is trimmed at a committed sentence end.
        hard_max_buffer_s: beyond this everything is committed and the buffer cleared
            (Whisper's window is 30 s).
        context_gap_s: silence after which the buffer (and its context) is dropped.
        prompt_chars: characters of recent committed text used as the prompt.
        rescue_min_s: VAD speech of this length that no committed word covers is
            decoded on its own before it leaves the buffer (0 disables the check).
        rescue_min_probability: a rescue decode whose mean word probability is lower is
            discarded (VAD "speech" that is noise yields low-confidence junk).
        use_vad: gate the audio with webrtcvad (off: every sample counts as speech).
        tentative_every_s: new speech (s) between two decodes of the cheap path
            (0: no cheap path).
        tentative_window_s: the cheap path decodes at most this much of the latest audio.
        tentative_context_s: the cheap path also decodes up to this much committed audio
            before the new speech, with its committed text forced as the output's start
            (Whisper is steadier with context; the context is not shown again).
        tentative_stale_s: when the tentative text ends in the same words while this much more
            audio arrived, the words have ended although the gate still hears sound
            (applause, a fan, a rustle): the utterance is committed there (0: never).
        pause_commit_after_s: with the cheap path, an utterance of at least this much
            speech is committed at a short pause inside it (the gate's ``pause``, a
            comma or a breath) instead of waiting for its end (0, the default: only at its
            end; with 2.0 the display latency fell but a synthesized consultation lost a turn).
        pause_lookahead_s: that commit waits for this much audio after the pause, so
            Whisper hears how the sentence goes on; only the words before the pause are
            committed.
        drop_noise_guesses: after a no-new-words commit, drop up to four unsure words decoded
            in that sound (Whisper's "Ja." in applause); off: the coverage test lost a short
            turn of a synthesized consultation to it.
        tentative_budget: the cheap path waits at least its last decode's cost divided
            by this before the next one (its share of the audio time stays below it).
        tentative_max_lag_s: when more audio than this arrived since the last call (the
            worker was behind), one tentative decode is skipped.
    """

    min_chunk_s: float = 2.0
    first_chunk_s: float = 3.0
    agree_after_s: float = 12.0
    stale_s: float = 0.0
    interim_context_s: float | None = None
    max_buffer_s: float = 15.0
    hard_max_buffer_s: float = 25.0
    context_gap_s: float = 2.0
    prompt_chars: int = 200
    rescue_min_s: float = 0.6
    rescue_min_probability: float = 0.5
    use_vad: bool = True
    tentative_every_s: float = 1.0
    tentative_window_s: float = 10.0
    tentative_context_s: float = 3.0
    tentative_stale_s: float = 0.0
    pause_commit_after_s: float = 0.0
    pause_lookahead_s: float = 1.0
    drop_noise_guesses: bool = False
    tentative_budget: float = 0.25
    tentative_max_lag_s: float = 2.0


@dataclass(slots=True)
class PathStats:
    """Decodes and their compute time (s) for one path."""

    calls: int = 0
    seconds: float = 0.0


class StreamingTranscriber:
    """Turns pushed audio into committed :class:`Segment` values and tentative text."""

    def __init__(
        self,
        decoder: Decoder,
        options: StreamingOptions | None = None,
        vad_options: VadOptions | None = None,
        clock: Callable[[], float] | None = None,
        gate: VadGate | None = None,
        tentative: bool = True,
    ) -> None:
        self.decoder = decoder
        self.options = options or StreamingOptions()
        self.cheap_path = tentative and self.options.tentative_every_s > 0
        self.vad_options = gate.options if gate is not None else vad_options or VadOptions()
        if gate is None and self.options.use_vad:
            gate = VadGate(self.vad_options)
        self.gate = gate
        self.agreement = LocalAgreement()
        self.transcript = Transcript()
        self.audio_end: float = 0.0  # session time of the last inserted sample
        self._clock = clock or (lambda: self.audio_end)
        self._queue: deque[GateEvent] = deque()
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0.0
        self._pre_roll: deque[AudioChunk] = deque()
        self._new_speech_s = 0.0  # speech in the buffer not yet seen by a decode
        self._utterance_s = 0.0  # speech of the current utterance
        self._silence_s = 0.0  # silence since the last speech
        self._pending_final = False  # speech arrived since the last final commit
        self._spans: list[list[float]] = []  # VAD speech [start, end] not yet checked
        self._rescued: list[Word] = []  # rescued words waiting to be emitted
        self._heard: list[list[float]] = []  # VAD speech [start, end] in the buffer
        self._next_id = 0
        self.decodes = 0
        self.accurate = PathStats()
        self.tentative = PathStats()
        self._since_tentative = 0.0  # speech since the last tentative text
        self._tentative_wait = self.options.tentative_every_s
        self._arrived_s = 0.0  # audio inserted since the last process_iter
        self._last_tentative: tuple[tuple[str, ...], float] = ((), 0.0)  # its words and audio end
        self._noise_from: float | None = None  # sound without words since (the cheap path found none)
        self._pause: float | None = None  # a pause inside the utterance, to commit through
        self._skipped = False

    # -- push side -------------------------------------------------------------------
    def insert_audio_chunk(self, chunk: AudioChunk) -> None:
        self.audio_end = max(self.audio_end, chunk.end)
        self._arrived_s += chunk.duration
        if self.gate is None:
            self._queue.append(GateEvent("speech", chunk.start, chunk))
        else:
            self._queue.extend(self.gate.push(chunk))

    @property
    def buffer_seconds(self) -> float:
        return len(self._buf) / SAMPLE_RATE

    # -- processing ------------------------------------------------------------------
    def process_iter(self) -> list[Event]:
        """Consume queued audio; decode if an utterance ended or enough speech is new."""
        events: list[Event] = []
        opts = self.options
        while self._queue:
            ev = self._queue.popleft()
            if ev.kind == "end":
                events.extend(self._finalize_utterance())
            elif ev.kind == "pause":
                if (self.cheap_path and opts.pause_commit_after_s and self._pause is None
                        and self._utterance_s >= opts.pause_commit_after_s):
                    self._pause = ev.time - self.vad_options.pause_s  # where the words stopped
            elif ev.chunk is not None:
                if ev.kind == "speech":
                    self._speech(ev.chunk)
                else:
                    self._silence(ev.chunk)
            if self._pause is not None and self._buf_start + self.buffer_seconds >= self._pause + opts.pause_lookahead_s:
                events.extend(self._commit_through(self._pause))
        arrived, self._arrived_s = self._arrived_s, 0.0
        if (
            self._new_speech_s >= opts.min_chunk_s
            and self._utterance_s >= max(opts.first_chunk_s, opts.agree_after_s if self.cheap_path else 0.0)
            and len(self._buf)
        ):
            events.extend(self._interim())
        elif self.cheap_path and self._since_tentative >= self._tentative_wait and len(self._buf):
            if arrived > opts.tentative_max_lag_s and not self._skipped:
                self._skipped = True  # behind: catch up first, show the newest audio next time
            else:
                self._skipped = False
                events.extend(self._tentative())
        return events

    def finish(self) -> list[Segment]:
        """End of stream: decode what is left and commit everything."""
        if self.gate is not None:
            self._queue.extend(self.gate.flush())
        events = self.process_iter()
        events.extend(self._finalize_utterance())
        return [e for e in events if isinstance(e, Segment)]

    def wipe(self) -> None:
        """Forget all audio and text of the session (end of a consultation)."""
        self._queue.clear()
        self._pre_roll.clear()
        self._spans.clear()
        self._heard.clear()
        self._rescued.clear()
        self._drop_buffer()
        self.agreement = LocalAgreement()
        self.transcript.clear()
        self._pause = self._noise_from = None
        self._last_tentative = ((), 0.0)
        self._pending_final = False
        self._utterance_s = self._since_tentative = 0.0

    # -- buffer ----------------------------------------------------------------------
    def _speech(self, chunk: AudioChunk) -> None:
        if len(self._buf) == 0:
            # start a buffer with the pre-roll that precedes the onset
            pre = [c for c in self._pre_roll if c.end <= chunk.start + 1e-6]
            self._buf_start = pre[0].start if pre else chunk.start
            self._buf = np.concatenate([*(c.samples for c in pre), np.zeros(0, np.float32)])
            self._pre_roll.clear()
        self._extend(chunk)
        for spans in (self._spans, self._heard):
            if spans and chunk.start - spans[-1][1] < 0.3:
                spans[-1][1] = chunk.end
            else:
                spans.append([chunk.start, chunk.end])
        self._new_speech_s += chunk.duration
        self._utterance_s += chunk.duration
        self._since_tentative += chunk.duration
        self._silence_s = 0.0
        self._pending_final = True

    def _silence(self, chunk: AudioChunk) -> None:
        if len(self._buf) == 0:
            self._pre_roll.append(chunk)
            keep = self.vad_options.pre_roll_s
            while self._pre_roll and self._pre_roll[-1].end - self._pre_roll[0].start - self._pre_roll[0].duration >= keep:
                self._pre_roll.popleft()
            return
        self._silence_s += chunk.duration
        if self._silence_s > self.options.context_gap_s and not self._pending_final:
            self._drop_buffer()  # a long pause: the context is no longer useful
            self._pre_roll.append(chunk)
            return
        self._extend(chunk)

    def _extend(self, chunk: AudioChunk) -> None:
        expected = self._buf_start + self.buffer_seconds
        gap = chunk.start - expected
        if gap > 0.01:  # audio went missing (should not happen): pad to keep times right
            self._buf = np.concatenate([self._buf, np.zeros(int(round(gap * SAMPLE_RATE)), np.float32)])
        elif gap < -0.01:
            skip = int(round(-gap * SAMPLE_RATE))
            chunk = AudioChunk(chunk.samples[skip:], chunk.start + skip / SAMPLE_RATE)
        self._buf = np.concatenate([self._buf, chunk.samples.astype(np.float32, copy=False)])

    def _drop_buffer(self) -> None:
        self._buf = np.zeros(0, dtype=np.float32)
        self._heard.clear()
        self._new_speech_s = 0.0
        self._silence_s = 0.0
        self.agreement.reset()

    def _cut(self, time: float) -> None:
        drop = int(round((time - self._buf_start) * SAMPLE_RATE))
        if drop <= 0:
            return
        self._rescue(time)
        self._buf = self._buf[drop:]
        self._buf_start = time
        self._heard = [s for s in self._heard if s[1] > time]
        self.agreement.forget_before(time)

    # -- decoding --------------------------------------------------------------------
    def _prompt(self, origin: float | None = None) -> str:
        """Committed text before ``origin`` (default: the buffer start)."""
        origin = self._buf_start if origin is None else origin
        words = self.transcript.words[-80:] + self.agreement.committed
        before = sorted({(w.start, w.word): w for w in words if w.end <= origin + 0.01}.values(), key=lambda w: w.start)
        return words_text(before)[-self.options.prompt_chars :]

    def _decode(self, final: bool) -> list[Word]:
        """Decode the buffer (an interim decode only from ``interim_context_s`` before the
        first uncommitted word: the committed text is then the prompt, not re-decoded)."""
        origin = self._buf_start
        if not final and self.options.interim_context_s is not None:
            origin = max(origin, self.agreement.last_committed_end - self.options.interim_context_s)
        audio = self._buf[int(round((origin - self._buf_start) * SAMPLE_RATE)) :]
        t0 = time.perf_counter()
        words = self.decoder.decode(audio, prompt=self._prompt(origin), final=final, speech=self._speech_in(origin))
        self._count(self.accurate, t0)
        self._new_speech_s = 0.0
        return [w.shifted(origin) for w in words]

    def _count(self, path: PathStats, t0: float) -> float:
        cost = time.perf_counter() - t0
        path.calls += 1
        path.seconds += cost
        self.decodes += 1
        return cost

    def _tentative(self) -> list[Event]:
        """The cheap path: a greedy text-only decode of the audio since the last committed
        word (at most ``tentative_window_s``), for the screen."""
        opts = self.options
        end = self._buf_start + self.buffer_seconds
        origin = max(self._buf_start, self.agreement.last_committed_end, end - opts.tentative_window_s)
        self._since_tentative = 0.0
        if end - origin < 0.5:
            return []
        # committed words just before the new speech, still in the buffer: context
        context = [w for w in self.agreement.committed
                   if w.start >= max(self._buf_start, origin - opts.tentative_context_s) and w.end <= origin + 0.01]
        begin = context[0].start if context and opts.tentative_context_s > 0 else origin
        prefix = words_text([w for w in context if w.start >= begin]) if begin < origin else ""
        audio = self._buf[int(round((begin - self._buf_start) * SAMPLE_RATE)) :]
        t0 = time.perf_counter()
        text = self.decoder.decode_tentative(audio, prompt=self._prompt(begin), prefix=prefix)
        cost = self._count(self.tentative, t0)
        if opts.tentative_budget > 0:
            self._tentative_wait = max(opts.tentative_every_s, cost / opts.tentative_budget)
        events: list[Event] = [Tentative(text, origin, end, self._clock())]
        key = tuple(k for k in (normalize_word(w) for w in text.split()) if k)[-3:]  # its last words
        same, since = self._last_tentative
        if key and key == same and opts.tentative_stale_s > 0 and end - since >= opts.tentative_stale_s:
            logger.debug("no new words in %.1f s of sound: the utterance ends here", end - since)
            events.extend(self._finalize_utterance(keep_noise=True))
            # until the gate hears a pause, a few words decoded in this sound must be confident
            self._noise_from = self.agreement.last_committed_end
        elif key != same:
            self._last_tentative = (key, end)
        return events

    def _tentative_of_agreement(self) -> Tentative:
        words = self.agreement.tentative
        end = self._buf_start + self.buffer_seconds
        start = words[0].start if words else min(end, self.agreement.last_committed_end)
        self._since_tentative = 0.0
        return Tentative(words_text(words), start, end, self._clock())

    def _interim(self) -> list[Event]:
        hypothesis = self._decode(final=False)
        events: list[Event] = []
        if self._utterance_s < self.options.agree_after_s:
            self.agreement.observe(hypothesis)
            committed = []
        else:
            committed = self.agreement.insert(hypothesis)
        if committed:
            events.append(self._emit(committed))
        if self.buffer_seconds > self.options.hard_max_buffer_s:
            rest = self.agreement.commit_all()
            if rest:
                events.append(self._emit(rest))
            self._force_trim()
        elif self.buffer_seconds > self.options.max_buffer_s:
            self._trim()
        events.extend(self._flush_rescued())
        events.append(self._tentative_of_agreement())
        last = max([self.agreement.last_committed_end, *(w.end for w in hypothesis)])
        if self.options.stale_s and self._buf_start + self.buffer_seconds - last > self.options.stale_s:
            # the gate still hears "speech" but Whisper finds no words in it (applause,
            # noise, a cough): end the utterance here instead of holding its text back
            events.extend(self._finalize_utterance())
        return events

    def _commit_through(self, until: float) -> list[Event]:
        """Commit the words of the utterance before a pause inside it (decoded with the
        whole buffer, the audio after the pause included); the rest stays open."""
        self._pause = None
        if not self._pending_final or len(self._buf) == 0:
            return []
        hypothesis = self._decode(final=True)
        words = self.agreement.commit_all(list(itertools.takewhile(lambda w: w.end <= until + 0.15, hypothesis)))
        self.agreement.observe(hypothesis)
        events: list[Event] = []
        if words:
            events.append(self._emit(words))
        self._utterance_s = max(0.0, self._buf_start + self.buffer_seconds - until)
        self._since_tentative = 0.0  # the accurate decode's rest is shown below, no cheap decode now
        self._last_tentative = ((), 0.0)
        if self.buffer_seconds > self.options.max_buffer_s:
            self._trim()
        events.extend(self._flush_rescued())
        if self.agreement.tentative:  # the accurate decode's words after the pause: show them now
            events.append(self._tentative_of_agreement())
        return events

    def _finalize_utterance(self, keep_noise: bool = False) -> list[Event]:
        self._pause = None
        self._utterance_s = 0.0
        self._since_tentative = 0.0
        self._last_tentative = ((), 0.0)
        noise_from = self._noise_from
        if not keep_noise:
            self._noise_from = None
        if not self._pending_final or len(self._buf) == 0:
            return []
        self._pending_final = False
        if self._new_speech_s > 0 or not self.agreement.tentative:
            words = self.agreement.commit_all(self._decode(final=True))
        else:  # the last decode already saw the whole utterance
            words = self.agreement.commit_all()
        if noise_from is not None and self.options.drop_noise_guesses:
            words = self._drop_guesses(words, noise_from)
        events: list[Event] = []
        self._rescue(self._buf_start + self.buffer_seconds)
        words = sorted([*words, *self._rescued], key=lambda w: w.start)  # one segment, in time order
        self._rescued = []
        if words:
            events.append(self._emit(words))
        if self.buffer_seconds > self.options.max_buffer_s:
            self._trim()
        events.extend(self._flush_rescued())
        end = self._buf_start + self.buffer_seconds
        events.append(Tentative("", end, end, self._clock()))
        return events

    def _drop_guesses(self, words: list[Word], noise_from: float) -> list[Word]:
        """A few words (at most four) in sound where the cheap path found no words
        (applause, a rustle) must be confident (mean probability
        ``rescue_min_probability``): Whisper guesses short phrases ("Ja.", "Hva?") in
        noise. Longer speech is always kept."""
        noise = [w for w in words if w.start >= noise_from - 0.3]
        if (not noise or len(noise) > 4
                or sum(w.probability for w in noise) / len(noise) >= self.options.rescue_min_probability):
            return words
        logger.debug("dropped %d unsure words decoded in sound without speech", len(noise))
        drop = {id(w) for w in noise}
        self.agreement.committed = [w for w in self.agreement.committed if id(w) not in drop]
        return [w for w in words if id(w) not in drop]

    def _rescue(self, until: float) -> None:
        """Decode speech the gate heard but no committed word covers, before its audio
        leaves the buffer (at a cut, and at each utterance end).

        A re-decode can lose a stretch of speech (Whisper skips it, or agreement and
        trimming move past it). Every VAD speech span before ``until`` is checked against
        the committed words; a part of at least ``rescue_min_s`` that none covers is
        decoded on its own and committed (in time order) with the next events.
        """
        spans = self._spans
        self._spans = [[max(a, until), b] for a, b in spans if b > until]
        if self.options.rescue_min_s <= 0:
            return
        done = sorted((w.start, w.end) for w in self.agreement.committed)
        covered = [(a - 0.3, b + 0.3) for a, b in done]
        words: list[Word] = []
        for lo, hi in _uncovered(spans, covered, self._buf_start, until, self.options.rescue_min_s):
            lo, hi = max(self._buf_start, lo - 0.3), min(self._buf_start + self.buffer_seconds, hi + 0.3)
            i, j = (int(round((t - self._buf_start) * SAMPLE_RATE)) for t in (lo, hi))
            t0 = time.perf_counter()
            found = [
                w.shifted(lo)
                for w in self.decoder.decode(self._buf[i:j], prompt=self._prompt(), final=True, speech=self._speech_in(lo))
            ]
            self._count(self.accurate, t0)
            if found and sum(w.probability for w in found) / len(found) < self.options.rescue_min_probability:
                found = []  # a second chance must be a confident one (noise gives junk)
            logger.debug("rescue decode of %.2f s of uncovered speech: %d words", hi - lo, len(found))
            words.extend(w for w in found if not any(a < w.end - 0.1 and b > w.start + 0.1 for a, b in done))
        if words:
            self.agreement.committed.extend(words)
            self.agreement.committed.sort(key=lambda w: w.start)
            self._rescued.extend(words)

    def _speech_in(self, origin: float) -> list[tuple[float, float]]:
        """Speech spans in the buffer, relative to ``origin``."""
        return [(max(a, self._buf_start) - origin, b - origin) for a, b in self._heard if b > self._buf_start]

    def _flush_rescued(self) -> list[Event]:
        words, self._rescued = sorted(self._rescued, key=lambda w: w.start), []
        return [self._emit(words)] if words else []

    def _force_trim(self) -> None:
        """The buffer reached Whisper's window: cut at the last committed word, keeping
        the audio after it (never drop speech that was not transcribed). If nothing in
        the buffer was recognised, keep only its last ``min_chunk_s`` of audio."""
        end = self.agreement.last_committed_end
        if end > self._buf_start + 0.5:
            self._cut(end)
        if self.buffer_seconds > self.options.max_buffer_s:
            self._cut(self._buf_start + self.buffer_seconds - self.options.min_chunk_s)
        logger.debug("buffer at its limit, trimmed to %.2f s", self.buffer_seconds)

    def _trim(self) -> None:
        """Cut the buffer at a committed sentence end (keeping one sentence as context),
        or at the last committed word."""
        committed = [w for w in self.agreement.committed if w.end > self._buf_start]
        if not committed:
            return
        ends = [w.end for w in committed if w.word.strip().endswith(_SENTENCE_END)]
        keep_from = self._buf_start + self.buffer_seconds - self.options.max_buffer_s
        candidates = [e for e in ends[:-1] if e >= keep_from] or ends[-1:] or [committed[-1].end]
        self._cut(candidates[0])
        logger.debug("trimmed buffer to %.2f s", self.buffer_seconds)

    def _emit(self, words: list[Word]) -> Segment:
        seg = Segment(
            id=self._next_id,
            start=words[0].start,
            end=words[-1].end,
            text=words_text(words),
            words=tuple(words),
            emitted_at=self._clock(),
        )
        self._next_id += 1
        self.transcript.add(seg)
        return seg


def _uncovered(
    spans: list[list[float]], covered: list[tuple[float, float]], lo: float, hi: float, min_s: float
) -> list[tuple[float, float]]:
    """Parts of the speech ``spans`` (clipped to [lo, hi]) outside the sorted ``covered``
    intervals that are at least ``min_s`` long."""
    out: list[tuple[float, float]] = []
    for a, b in spans:
        a, b = max(a, lo), min(b, hi)
        for c, d in covered:
            if d <= a or c >= b:
                continue
            if c - a >= min_s:
                out.append((a, c))
            a = max(a, d)
            if a >= b:
                break
        if b - a >= min_s:
            out.append((a, b))
    return out
