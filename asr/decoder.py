"""Whisper decoding behind a small protocol, with faster-whisper as the implementation.

The streaming transcriber only needs "decode this buffer, given this prompt, into
words with times relative to the buffer start"; tests substitute a scripted fake.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from asr.types import Word

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

LANGUAGES = {"no": "no", "nb": "no", "bokmål": "no", "nn": "nn", "nynorsk": "nn", "en": "en", "auto": None}

# Phrases Whisper is known to invent on silence or noise in Norwegian and English
# (subtitle credits from its training data). A segment consisting only of one of these
# is dropped.
_HALLUCINATIONS = re.compile(
    r"^\s*(teksting av.*|tekst(et)? av.*|undertekst(er)? av.*|norsk tekst.*|"
    r"takk for (at du så på|meg|nå|oppmerksomheten)\W*|"
    r"thanks? (you )?for watching.*|subtitles by.*|amara\.org.*)\s*$",
    re.IGNORECASE,
)


WHISPER_CONTEXT = 448
"""Positions of Whisper's text decoder: prompt plus output must fit."""

MAX_WORD_S = 2.5
"""No real word lasts this long; such a span is Whisper stretching a word over noise."""


def cut_repetitions(words: list[Word], max_ngram: int = 8) -> list[Word]:
    """Remove loops: a phrase of three or more words repeated right after itself, or a
    word or word pair repeated a third time in a row, is dropped (also a trailing
    partial copy of the loop).

    Whisper without temperature fallback can loop ("som jeg glade i gutter som jeg glade
    i gutter ..."); immediate repetition in real speech is of single words ("nei, nei").
    """
    from asr.agreement import normalize_word

    keys = [normalize_word(w.word) for w in words]
    out: list[Word] = []
    out_keys: list[str] = []
    loop: list[str] = []
    i = 0
    while i < len(words):
        skipped = False
        for n in range(1, max_ngram + 1):
            copies = 2 if n <= 2 else 1  # copies allowed before the next one is a loop
            gram = keys[i : i + n]
            if len(gram) < n or len(out_keys) < n * copies:
                break
            if all(out_keys[len(out_keys) - n * k : len(out_keys) - n * (k - 1)] == gram for k in range(1, copies + 1)):
                i += n
                loop = gram
                skipped = True
                break
        if skipped:
            continue
        rest = keys[i:]
        if loop and len(rest) < len(loop) and rest == loop[: len(rest)]:
            break  # a partial copy of the loop at the end
        out.append(words[i])
        out_keys.append(keys[i])
        i += 1
    return out


def _without_repeated_prefix(words: list[Word], prefix: str) -> list[Word]:
    """Whisper sometimes starts again with the forced prefix's words after the prefix:
    drop a start of ``words`` that repeats the prefix (at least its last two words)."""
    from asr.agreement import normalize_word

    ctx = [k for k in (normalize_word(w) for w in prefix.split()) if k]
    keys = [normalize_word(w.word) for w in words]
    for n in range(min(len(ctx), len(keys)), 1, -1):
        if keys[:n] == ctx[:n] or keys[:n] == ctx[-n:]:
            return words[n:]
    return words


Spans = list[tuple[float, float]]


class Decoder(Protocol):
    """Turns a 16 kHz buffer into words (times relative to the buffer start).

    ``speech`` (optional) lists where the voice activity gate heard speech in the buffer
    (seconds from its start); a decoder may use it to decide whether speech is left
    after the words it found.
    """

    def decode(self, audio: np.ndarray, *, prompt: str, final: bool, speech: Spans | None = None) -> list[Word]: ...

    def decode_tentative(self, audio: np.ndarray, *, prompt: str, prefix: str = "") -> str:
        """A cheap hypothesis of ``audio`` for the screen only: text, no word times.
        ``prefix``: the committed text of the audio's beginning (context); it is forced,
        and only what follows it is returned."""
        ...


def speech_after(speech: Spans, t: float) -> float:
    """Seconds of speech in ``speech`` after time ``t``."""
    return sum(max(0.0, b - max(a, t)) for a, b in speech)


def copies_prompt(text: str, prompt: str, n: int = 3) -> bool:
    """True if most word n-grams of ``text`` occur in ``prompt``: Whisper repeating its
    prompt over noise or silence (a hallucination), not new speech."""
    from asr.agreement import normalize_word

    words = [normalize_word(w) for w in text.split()]
    words = [w for w in words if w]
    if len(words) < n + 1:
        return False
    source = [normalize_word(w) for w in prompt.split()]
    known = {tuple(source[i : i + n]) for i in range(len(source) - n + 1)}
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return sum(g in known for g in grams) >= 0.5 * len(grams)


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """Whisper decoding settings for streaming.

    Attributes:
        language: ``"no"`` (bokmål), ``"nn"`` (nynorsk), ``"en"`` or ``None`` to detect
            the language once, on the first utterance.
        beam_size: beam for the decode that ends an utterance (final text).
        interim_beam_size: beam for the re-decodes inside an utterance (cheaper).
        tentative_beam_size: beam of the cheap path's decodes (screen only).
        vocabulary: words to bias recognition toward (drug names of the specialty),
            placed in Whisper's prompt.
        no_speech_threshold: drop a segment Whisper thinks is not speech.
    """

    language: str | None = "no"
    beam_size: int = 5
    interim_beam_size: int = 1
    tentative_beam_size: int = 1
    vocabulary: tuple[str, ...] = ()
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0


def normalize_language(value: str | None) -> str | None:
    key = (value or "auto").strip().lower()
    if key not in LANGUAGES:
        from asr.errors import ConfigError

        raise ConfigError(f"unknown language {value!r}: use one of no, nn, en, auto")
    return LANGUAGES[key]


@dataclass(slots=True)
class DecodeStats:
    calls: int = 0
    seconds: float = 0.0
    audio_seconds: float = 0.0
    per_call: deque[float] = field(default_factory=lambda: deque(maxlen=256))  # the latest calls
    tentative_calls: int = 0
    tentative_seconds: float = 0.0


class WhisperDecoder:
    """One encoder pass, one generate, one alignment per call, from faster-whisper's parts.

    ``WhisperModel.transcribe`` is built for long files: it seeks through the window and,
    with word timestamps, re-encodes the tail after the last word, so a streaming
    re-decode could cost several encoder passes. Streaming needs exactly one, at
    temperature 0 (no fallback re-decodes: their cost is unbounded), with the output
    length bounded by the audio length so a repetition loop stays cheap.

    The encoder may run on the buffer's own length (plus 1 s, at least 5 s) instead of
    Whisper's fixed 30 s window (``crop_interim``, ``crop_final``): CTranslate2 accepts
    shorter inputs and a 5-10 s buffer then costs a fraction of the encoder time. On
    ``king.mp3`` this changed WER by less than the run-to-run spread of the settings
    (see benchmarks/README.md); the decode that ends an utterance uses the full beam.
    """

    PREPEND = "\"'“¿([{-"
    APPEND = "\"'.。,，!！?？:：”)]}、"

    def __init__(
        self,
        model: WhisperModel,
        options: DecodeOptions | None = None,
        *,
        crop_interim: bool = True,
        crop_final: bool = True,
        max_passes: int = 3,
        continue_after_s: float = 2.0,
    ) -> None:
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.options = options or DecodeOptions()
        self.crop_interim = crop_interim
        self.crop_final = crop_final
        self.language = self.options.language
        self.max_passes = max_passes
        self.continue_after_s = continue_after_s
        self.stats = DecodeStats()
        self._tokenizer_cls = Tokenizer
        self._tokenizer = self._make_tokenizer(self.language or "en")
        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]))

    def _make_tokenizer(self, language: str) -> Any:
        return self._tokenizer_cls(
            self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language=language
        )

    def vocabulary_prompt(self) -> str:
        if not self.options.vocabulary:
            return ""
        return ", ".join(self.options.vocabulary) + "."

    def decode(self, audio: np.ndarray, *, prompt: str, final: bool, speech: Spans | None = None) -> list[Word]:
        """Decode the buffer; if Whisper stops early, continue after its last word.

        In timestamp mode Whisper may end its output after a first segment although
        speech follows (faster-whisper's ``transcribe`` seeks on for that reason). If
        more than ``continue_after_s`` of speech (by ``speech``, or of audio if not
        given) follows the last word, the rest is decoded again from the last word on,
        with the words so far as prompt, up to ``max_passes`` windows; otherwise that
        speech would never be transcribed.
        """
        t0 = time.perf_counter()
        duration = len(audio) / 16000
        words: list[Word] = []
        seek = 0.0
        for _ in range(self.max_passes if final else 1):  # interim: the next decode sees it
            part = audio[int(round(seek * 16000)) :]
            context = " ".join(p for p in (prompt, "".join(w.word for w in words).strip()) if p)
            found = [w.shifted(seek) for w in self._decode_window(part, context[-400:], final)]
            if not found and context and (speech is None or speech_after(speech, seek) >= 1.0):
                # conditioned on its prompt Whisper sometimes ends at once although there
                # is speech (whisper resets the prompt on a failed window, too): retry bare
                found = [w.shifted(seek) for w in self._decode_window(part, "", final)]
            found = [w for w in found if w.start >= seek - 0.05]
            if not found:
                break
            words.extend(found)
            left = duration - words[-1].end if speech is None else speech_after(speech, words[-1].end + 0.3)
            if left < self.continue_after_s:
                break
            seek = words[-1].end
        words = cut_repetitions(words)
        dt = time.perf_counter() - t0
        self.stats.calls += 1
        self.stats.seconds += dt
        self.stats.audio_seconds += duration
        self.stats.per_call.append(dt)
        logger.debug("decoded %.2f s of audio in %.3f s (final=%s)", duration, dt, final)
        return words

    def decode_tentative(self, audio: np.ndarray, *, prompt: str, prefix: str = "") -> str:
        """The cheap path: one greedy pass without timestamps and without word alignment,
        on an encoder window cropped to the audio. Used for the greyed text on screen,
        never for the record. Filtered like :meth:`decode` (no speech, known
        hallucinations, a copy of the prompt, repetition loops).

        ``prefix`` is the committed text of the audio's first seconds (context, as on the
        accurate path): it is forced as the start of the output, and only the words
        Whisper adds after it are returned."""
        t0 = time.perf_counter()
        duration = len(audio) / 16000
        text = ""
        if duration >= 0.3:
            encoder_output, _ = self._encode(audio, crop=True)
            tok = self._tokenizer
            max_new = min(int(8 + 6 * duration), WHISPER_CONTEXT // 2)
            prompt_tokens = self._prompt_tokens(prompt, max_new, without_timestamps=True, prefix=prefix)
            result = self.model.model.generate(
                encoder_output,
                [prompt_tokens],
                beam_size=self.options.tentative_beam_size,
                max_length=min(WHISPER_CONTEXT, len(prompt_tokens) + max_new),
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=self._suppress,
            )[0]
            tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
            if self._accept(result, tokens, prompt):
                words = [Word(" " + w, 0.0, 0.0, 1.0) for w in tok.decode(tokens).split()]
                words = _without_repeated_prefix(cut_repetitions(words), prefix)
                text = "".join(w.word for w in words).strip()
        self.stats.tentative_calls += 1
        self.stats.tentative_seconds += time.perf_counter() - t0
        return text

    def _encode(self, audio: np.ndarray, *, crop: bool) -> tuple[Any, int]:
        """Whisper's encoder output for ``audio`` (on a window cropped to the audio plus
        1 s, at least 5 s, when ``crop``) and the number of content frames; detects the
        language on the first call when it is not set."""
        from faster_whisper.audio import pad_or_trim

        features = self.model.feature_extractor(audio)
        content_frames = min(features.shape[-1] - 1, 3000)
        if not crop:
            window = pad_or_trim(features)
        else:  # the buffer plus 1 s of padding, at least 5 s
            window = pad_or_trim(features, min(3000, max(500, content_frames + 100)))
        encoder_output = self.model.encode(window)
        if self.language is None:
            lang, prob = self.model.model.detect_language(encoder_output)[0][0]
            self.language = lang[2:-2]
            self._tokenizer = self._make_tokenizer(self.language)
            logger.info("detected language %s (p=%.2f)", self.language, prob)
        return encoder_output, content_frames

    def _prompt_tokens(self, prompt: str, max_new: int, *, without_timestamps: bool, prefix: str = "") -> list[int]:
        """Whisper's decoder sees 448 positions: vocabulary (at most 100 tokens) and recent
        text share what the output leaves free; the oldest text goes first."""
        tok = self._tokenizer
        vocab = self.vocabulary_prompt()
        previous = (tok.encode(" " + vocab)[:100] if vocab else []) + (tok.encode(" " + prompt.strip()) if prompt.strip() else [])
        previous = previous[-max(0, WHISPER_CONTEXT - max_new - 8) :] if previous else []
        return list(self.model.get_prompt(tok, previous, without_timestamps=without_timestamps, prefix=prefix or None))

    def _accept(self, result: Any, tokens: list[int], prompt: str) -> bool:
        """False for a decode to drop: no speech, a known hallucination, a copy of the prompt."""
        opts = self.options
        avg_logprob = result.scores[0] * len(result.sequences_ids[0]) / (len(result.sequences_ids[0]) + 1)
        text = self._tokenizer.decode(tokens).strip()
        if (result.no_speech_prob > opts.no_speech_threshold and avg_logprob < opts.log_prob_threshold) or not tokens:
            logger.debug("no speech in this buffer")
        elif _HALLUCINATIONS.match(text):
            logger.debug("dropped a known Whisper hallucination")
        elif prompt and copies_prompt(text, prompt):
            logger.debug("dropped a decode that repeats its prompt")
        else:
            return True
        return False

    def _decode_window(self, audio: np.ndarray, prompt: str, final: bool) -> list[Word]:
        from faster_whisper.transcribe import get_compression_ratio, merge_punctuations

        opts = self.options
        duration = len(audio) / 16000
        if duration < 0.3:
            return []
        encoder_output, content_frames = self._encode(audio, crop=self.crop_final if final else self.crop_interim)
        tok = self._tokenizer
        max_new = min(int(16 + 10 * duration), WHISPER_CONTEXT // 2)  # text plus timestamp tokens
        # Timestamp mode: without it Whisper tends to stop after the first sentence.
        prompt_tokens = self._prompt_tokens(prompt, max_new, without_timestamps=False)
        result = self.model.model.generate(
            encoder_output,
            [prompt_tokens],
            beam_size=opts.beam_size if final else opts.interim_beam_size,
            max_length=min(WHISPER_CONTEXT, len(prompt_tokens) + max_new),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            max_initial_timestamp_index=50,  # the first word within 1 s, as faster-whisper
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
        text = tok.decode(tokens).strip()
        words: list[Word] = []
        if self._accept(result, tokens, prompt):
            if get_compression_ratio(text) > 2.4:
                logger.debug("repetitive decode (compression ratio > 2.4)")
            alignment = self.model.find_alignment(tok, [tokens], encoder_output, content_frames)[0]
            merge_punctuations(alignment, self.PREPEND, self.APPEND)
            for w in alignment:
                if not w["word"]:
                    continue
                start = min(float(w["start"]), duration)
                end = min(max(float(w["end"]), start), duration)
                if end - start > MAX_WORD_S or start >= duration - 0.05:
                    continue  # stretched over noise, or squeezed onto the window's end
                words.append(Word(w["word"], start, end, float(w["probability"])))
        return words
