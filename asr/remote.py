"""Speech recognition by an OpenAI-compatible server (``[asr] engine = "openai"``).

A department edge server can hand ASR to a shared GPU pool (vLLM, faster-whisper servers)
that speaks ``POST {api_base}/audio/transcriptions``. :class:`RemoteTranscriber` has the
streaming transcriber's interface, so :func:`asr.pipeline.run_stream`, the speaker stream
and the consultation drive it unchanged. The VAD gate (as for the local engine) cuts the
audio into utterances in memory; silence is never sent. Each utterance is posted when it
ends (a long one at a pause after ``soft_clip_s``, at the latest at ``max_clip_s`` = 28 s)
as an in-memory 16-bit WAV, with the vocabulary and recent committed text as the prompt.
The answer's ``segments`` (``verbose_json``) are filtered by the local decoder's rules and
committed as one :class:`~asr.types.Segment` per clip, in session time. No tentative text.

Failures: connection errors and HTTP 5xx are retried once; then, and at once for a timeout
or any other answer, a one-line :class:`AsrServerError` naming the server is raised and
``run_stream`` ends the recording with it: what was committed is kept, later audio is not
transcribed (it is never stored, so it cannot be sent later). Skipping failed utterances
while recording on would leave holes in the record that nobody sees.

Privacy: audio and text live in memory and go only to the configured server; the log gets
durations, counts and the server's address, never audio, text, the prompt, the server's
answer or error body (it may echo the prompt), nor the API key (from the environment
variable ``api_key_env``, sent as ``Authorization: Bearer``).
"""

from __future__ import annotations

import io
import ipaddress
import logging
import math
import os
import ssl
import time
import wave
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from asr.decoder import _HALLUCINATIONS, MAX_WORD_S, DecodeOptions, copies_prompt, cut_repetitions
from asr.errors import ConfigError, ScribeError
from asr.streaming import Event, PathStats
from asr.types import SAMPLE_RATE, AudioChunk, Segment, Transcript, Word, words_text
from asr.vad import GateEvent, VadGate, VadOptions

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "whisper-1"
DEFAULT_KEY_ENV = "SCRIBE_ASR_API_KEY"
VOCABULARY_CHARS = 300
"""The vocabulary's share of the prompt (about the local decoder's 100 tokens)."""


class AsrServerError(ScribeError):
    """The ASR server cannot be reached or did not transcribe an utterance."""


def vocabulary_prompt(vocabulary: tuple[str, ...] | list[str]) -> str:
    """The vocabulary as Whisper's prompt starts with it locally ("a, b, c."), cut at a
    comma to about ``VOCABULARY_CHARS``."""
    if not vocabulary:
        return ""
    text = ", ".join(vocabulary) + "."
    if len(text) > VOCABULARY_CHARS:
        text = text[:VOCABULARY_CHARS].rsplit(",", 1)[0] + "."
    return text


def wav_bytes(audio: np.ndarray) -> bytes:
    """16 kHz mono float32 samples as a 16-bit PCM WAV file, in memory."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _display_url(url: str) -> str:
    """The server's address for messages and logs: scheme, host, port and path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/")


def _is_local(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Where and how to reach the server (``[asr] api_*`` settings)."""

    base_url: str  # including the API prefix, e.g. http://gpu-pool:8000/v1
    model: str = DEFAULT_MODEL  # the name the server knows (sent as model and model_name)
    api_key_env: str = DEFAULT_KEY_ENV  # the environment variable holding the API key (none: no header)
    timeout_s: float = 60.0  # longest wait for one answer (one clip's transcription)
    connect_timeout_s: float = 5.0
    retries: int = 1  # further attempts after a connection error or HTTP 5xx
    retry_wait_s: float = 0.5  # the pause before such an attempt


class AsrServer:
    """A client of one OpenAI-compatible transcription server (thread-safe: one per engine,
    shared by its sessions). ``transport`` and ``environ`` are for tests."""

    def __init__(
        self,
        options: ServerOptions,
        *,
        transport: httpx.BaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        base = options.base_url.strip().rstrip("/")
        if not base:
            raise ConfigError('asr.engine "openai" needs asr.api_base, e.g. http://gpu-pool:8000/v1')
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"asr.api_base {_display_url(base)!r} is not an http(s) URL: use e.g. http://gpu-pool:8000/v1")
        if parts.username or parts.password:
            raise ConfigError(f"asr.api_base must not hold a user name or password: put the API key in ${options.api_key_env}")
        self.options = options
        self.base_url = base
        self.where = _display_url(base)
        self.host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        if parts.scheme == "http" and not _is_local(parts.hostname):
            logger.warning("ASR server %s is plain http: patient audio crosses the network unencrypted", self.where)
        env = os.environ if environ is None else environ
        key = env.get(options.api_key_env, "").strip() if options.api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        logger.debug("ASR server %s, model %s, %s", self.where, options.model,
                     f"API key from ${options.api_key_env}" if key else "no API key")
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(options.timeout_s, connect=options.connect_timeout_s),
            transport=transport,
            verify=ssl.create_default_context(),  # the system's CAs (a hospital CA installed there)
            follow_redirects=False,
        )

    @property
    def model_id(self) -> str:
        return f"openai:{self.options.model}@{self.host}"

    def close(self) -> None:
        self._client.close()

    def check(self) -> None:
        """Raise :class:`AsrServerError` unless the server answers ``GET {base}/models``
        (any answer but 401/403 will do: not every server lists its models)."""
        try:
            r = self._client.get(f"{self.base_url}/models", timeout=httpx.Timeout(self.options.connect_timeout_s * 2))
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        if r.status_code in (401, 403):
            raise self._status_error(r)
        logger.debug("ASR server %s answers (HTTP %d)", self.where, r.status_code)

    def transcribe(self, audio: np.ndarray, *, prompt: str = "", language: str | None = None) -> dict[str, Any]:
        """The server's ``verbose_json`` answer for ``audio`` (16 kHz float32), posted as
        an in-memory WAV (word times asked for: servers without them ignore the field);
        retried once after a connection error or HTTP 5xx."""
        opts = self.options
        data: dict[str, Any] = {
            "model": opts.model,
            "model_name": opts.model,  # faster-whisper-server reads this name
            "response_format": "verbose_json",
            "temperature": "0",
            "timestamp_granularities[]": ["segment", "word"],
        }
        if language:
            data["language"] = language
        if prompt:
            data["prompt"] = prompt
        files = {"file": ("utterance.wav", wav_bytes(audio), "audio/wav")}
        url = f"{self.base_url}/audio/transcriptions"
        for attempt in range(opts.retries + 1):
            try:
                r = self._client.post(url, data=data, files=files)
            except httpx.HTTPError as exc:
                error = self._transport_error(exc)
                retry = isinstance(exc, httpx.ConnectError | httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError)
            else:
                if r.status_code < 400:
                    return self._json(r)
                error = self._status_error(r)
                retry = r.status_code >= 500
            if not retry or attempt >= opts.retries:
                raise error
            logger.warning("%s; trying once more", error)
            time.sleep(opts.retry_wait_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, r: httpx.Response) -> dict[str, Any]:
        try:
            payload = r.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("segments", []), list):
            raise AsrServerError(f"ASR server {self.where}: the answer is not an OpenAI verbose_json transcription "
                                 "(is asr.api_base the /v1 prefix of an OpenAI-compatible server?)")
        return payload

    def _status_error(self, r: httpx.Response) -> AsrServerError:
        """One line for an HTTP error; the body is never quoted (it may echo the prompt)."""
        code = r.status_code
        hint = {
            401: f"the API key was refused: set ${self.options.api_key_env}",
            403: f"the API key was refused: set ${self.options.api_key_env}",
            404: "no /audio/transcriptions there: asr.api_base must end with the API prefix, e.g. /v1, "
                 f"and the server must know the model {self.options.model!r} (asr.api_model)",
            413: "the audio was too large for the server",
            429: "the server is busy (rate limit): try again",
        }.get(code, "the server failed: try again or ask its administrator" if code >= 500
              else f"the request was rejected: check asr.api_model ({self.options.model!r}) and asr.language")
        logger.debug("ASR server %s: HTTP %d with %d bytes of body (not shown)", self.where, code, len(r.content))
        return AsrServerError(f"ASR server {self.where}: HTTP {code}: {hint}")

    def _transport_error(self, exc: httpx.HTTPError) -> AsrServerError:
        o = self.options
        if isinstance(exc, httpx.ConnectTimeout):
            why = f"no connection within {o.connect_timeout_s:g} s: is the server up and asr.api_base right?"
        elif isinstance(exc, httpx.TimeoutException):
            why = f"no answer within {o.timeout_s:g} s (asr.api_timeout_s): the server is overloaded or down"
        elif isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
            why = "its TLS certificate is not trusted here: install the hospital's CA in the system's certificate store"
        elif isinstance(exc, httpx.ConnectError):
            why = "connection refused or host unreachable: is the server running?"
        elif isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
            why = "the connection dropped mid-request: try again"
        elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            why = "not a usable URL (asr.api_base): use e.g. http://gpu-pool:8000/v1"
        else:
            why = f"the request failed ({type(exc).__name__}): try again"
        return AsrServerError(f"ASR server {self.where}: {why}")


# -- the answer -----------------------------------------------------------------------------


def _float(value: Any, default: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if math.isfinite(out) else default


def _spread(text: str, start: float, end: float, probability: float) -> list[Word]:
    """Words of a segment without word times (with a leading space, as Whisper's): its span
    shared by their lengths."""
    parts = text.split()
    step = (end - start) / max(1, sum(len(p) for p in parts))
    out: list[Word] = []
    for p in parts:
        out.append(Word(" " + p, start, start + step * len(p), probability))
        start += step * len(p)
    return out


def answer_words(payload: Mapping[str, Any], duration: float, *, prompt: str = "",
                 options: DecodeOptions | None = None) -> list[Word]:
    """The words of a ``verbose_json`` answer in ``[0, duration]`` (the clip's time), filtered
    by the local decoder's rules: a segment of no speech (``no_speech_prob`` above
    ``no_speech_threshold`` and ``avg_logprob`` below ``log_prob_threshold``), a known
    hallucination or a copy of the prompt is dropped, as are words longer than
    ``MAX_WORD_S`` and repetition loops. Word times come from the segment's or the answer's
    ``words``; without them the segment's words share its span. A word without its own
    probability gets ``exp(avg_logprob)``."""
    opts = options or DecodeOptions()
    segments = [s for s in payload.get("segments") or [] if isinstance(s, Mapping)]
    if not segments and str(payload.get("text") or "").strip():  # a server without segments
        segments = [{"start": 0.0, "end": duration, "text": payload["text"]}]
    loose = [w for w in payload.get("words") or [] if isinstance(w, Mapping)]
    out: list[Word] = []
    for seg in segments:
        text = str(seg.get("text") or "").strip()
        start = min(max(_float(seg.get("start"), 0.0), 0.0), duration)
        end = min(max(_float(seg.get("end"), duration), start), duration)
        avg_logprob = _float(seg.get("avg_logprob"), 0.0)
        no_speech = _float(seg.get("no_speech_prob"), 0.0)
        if not text:
            continue
        if no_speech > opts.no_speech_threshold and avg_logprob < opts.log_prob_threshold:
            logger.debug("no speech in a segment of the answer")
            continue
        if _HALLUCINATIONS.match(text):
            logger.debug("dropped a known Whisper hallucination")
            continue
        if prompt and copies_prompt(text, prompt):
            logger.debug("dropped a segment that repeats its prompt")
            continue
        probability = min(1.0, max(0.0, math.exp(avg_logprob)))
        given = seg.get("words")
        if not isinstance(given, list) or not given:
            given = [w for w in loose if start - 0.05 <= (_float(w.get("start"), 0) + _float(w.get("end"), 0)) / 2 <= end + 0.05]
        words: list[Word] = []
        for w in given:
            if not isinstance(w, Mapping) or not str(w.get("word") or "").strip():
                continue
            ws = min(max(_float(w.get("start"), start), 0.0), duration)
            we = min(max(_float(w.get("end"), ws), ws), duration)
            if we - ws > MAX_WORD_S:
                continue  # stretched over noise
            p = w.get("probability")
            words.append(Word(" " + str(w["word"]).strip(), ws, we, min(1.0, max(0.0, _float(p, probability)))))
        out.extend(words if words or given else _spread(text, start, end, probability))
    out.sort(key=lambda w: w.start)
    return cut_repetitions(out)


# -- the transcriber ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClipOptions:
    """How utterances become posted clips.

    Attributes:
        soft_clip_s: an utterance this long is cut at its next pause (the gate's ``pause``).
        max_clip_s: an utterance this long is cut at its last pause after ``min_cut_s``,
            or here (Whisper's window is 30 s).
        min_cut_s: the shortest clip such a cut makes.
        min_clip_s: shorter clips are not sent (clicks the gate let through).
        prompt_chars: characters of recent committed text in the prompt.
        continue_after_s: when more than this much of the clip follows the last word, the
            rest is sent again (Whisper may end its answer early), up to ``max_passes``
            requests per clip, as the local decoder continues.
        max_passes: requests per clip at most for that (retries without the recent text
            not counted).
        second_chance_min_probability: the words of such a continuation or retry are kept
            only if their mean probability reaches this (as the local engine's rescue
            decodes: sound that is no speech, e.g. applause, yields unsure junk).
    """

    soft_clip_s: float = 15.0
    max_clip_s: float = 28.0
    min_cut_s: float = 5.0
    min_clip_s: float = 0.3
    prompt_chars: int = 200
    continue_after_s: float = 2.0
    max_passes: int = 3
    second_chance_min_probability: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.min_clip_s <= self.min_cut_s < self.max_clip_s <= 30.0:
            raise ValueError("need 0 < min_clip_s <= min_cut_s < max_clip_s <= 30")


@dataclass(slots=True)
class _Clip:
    """The audio of the utterance not yet posted, and the pauses inside it."""

    start: float = 0.0
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    pauses: list[float] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.duration

    def add(self, chunk: AudioChunk) -> None:
        samples = chunk.samples.astype(np.float32, copy=False)
        if not len(self.audio):
            self.start = chunk.start
        elif (gap := int(round((chunk.start - self.end) * SAMPLE_RATE))) > 0:  # audio went missing: keep times right
            samples = np.concatenate([np.zeros(gap, np.float32), samples])
        elif gap < 0:
            samples = samples[-gap:]
        self.audio = np.concatenate([self.audio, samples])

    def take(self, until: float) -> tuple[np.ndarray, float]:
        """Remove and return the audio before ``until`` (and its start time)."""
        n = min(len(self.audio), max(0, int(round((until - self.start) * SAMPLE_RATE))))
        head, start = self.audio[:n], self.start
        self.audio, self.start = self.audio[n:], start + n / SAMPLE_RATE
        self.pauses = [p for p in self.pauses if p > self.start]
        return head, start

    def clear(self) -> None:
        self.audio.fill(0.0)  # a copy of the samples (concatenated): no caller's array
        self.audio, self.pauses = np.zeros(0, np.float32), []


class RemoteTranscriber:
    """The streaming transcriber's interface over an :class:`AsrServer` (module docstring).

    A server failure is raised (:class:`AsrServerError`) once, from :meth:`process_iter` or
    :meth:`finish`; when :meth:`process_iter` committed segments before it in the same call,
    they are returned and the next call raises. After it nothing more is sent."""

    def __init__(
        self,
        server: AsrServer,
        decode: DecodeOptions | None = None,
        vad_options: VadOptions | None = None,
        clock: Callable[[], float] | None = None,
        gate: VadGate | None = None,
        options: ClipOptions | None = None,
        use_vad: bool = True,
    ) -> None:
        self.server = server
        self.decode = decode or DecodeOptions()
        self.options = options or ClipOptions()
        self.vad_options = gate.options if gate is not None else vad_options or VadOptions()
        if gate is None and use_vad:
            gate = VadGate(self.vad_options)
        self.gate = gate
        self.transcript = Transcript()
        self.audio_end = 0.0
        self.accurate = PathStats()  # the server requests (the only path)
        self.tentative = PathStats()  # no cheap path: stays empty
        self.decodes = 0
        self.failed: AsrServerError | None = None
        self._raise_next = False  # the failure is raised by the next call
        self._clock = clock or (lambda: self.audio_end)
        self._queue: deque[GateEvent] = deque()
        self._clip = _Clip()
        self._pre_roll: deque[AudioChunk] = deque()
        self._next_id = 0

    # -- push side -----------------------------------------------------------------------
    def insert_audio_chunk(self, chunk: AudioChunk) -> None:
        self.audio_end = max(self.audio_end, chunk.end)
        if self.failed is not None:
            return  # the recording ends with the error: nothing more is sent
        if self.gate is None:
            self._queue.append(GateEvent("speech", chunk.start, chunk))
        else:
            self._queue.extend(self.gate.push(chunk))

    @property
    def buffer_seconds(self) -> float:
        return self._clip.duration

    def process_iter(self) -> list[Event]:
        """Consume the gate's events; post a clip at an utterance end or a long one's cut."""
        self._raise_pending()
        events: list[Event] = []
        try:
            while self._queue and self.failed is None:
                events.extend(self._handle(self._queue.popleft()))
        except AsrServerError:
            self._queue.clear()
            if not events:
                raise
            self._raise_next = True  # deliver what was committed first
        return events

    def finish(self) -> list[Segment]:
        """End of stream: post what is left (nothing after a failure). A failure here is
        raised even when this call committed segments first (they stay in ``transcript``):
        there is no later call to report it."""
        try:
            if self.gate is not None and self.failed is None:
                self._queue.extend(self.gate.flush())
            events = self.process_iter()
            if self.failed is None and len(self._clip.audio):
                events.extend(self._post(self._clip.end))
            self._raise_pending()
        finally:
            self._clip.clear()
        return [e for e in events if isinstance(e, Segment)]

    def wipe(self) -> None:
        """Forget all audio and text of the session (end of a consultation)."""
        self._queue.clear()
        self._pre_roll.clear()
        self._clip.clear()
        self.transcript.clear()

    # -- internals -----------------------------------------------------------------------
    def _raise_pending(self) -> None:
        if self._raise_next and self.failed is not None:
            self._raise_next = False
            raise self.failed

    def _handle(self, ev: GateEvent) -> list[Event]:
        opts = self.options
        clip = self._clip
        if ev.kind == "end":
            return self._post(clip.end)
        if ev.kind == "pause":
            if len(clip.audio):
                at = ev.time - self.vad_options.pause_s / 2  # inside the pause
                clip.pauses.append(at)
                if at - clip.start >= opts.soft_clip_s:
                    return self._post(at)
            return []
        if ev.chunk is None:
            return []
        if ev.kind != "speech":
            self._keep_pre_roll(ev.chunk)
            return []
        if not len(clip.audio):
            self._start_clip(ev.chunk.start)
        clip.add(ev.chunk)
        events: list[Event] = []
        while clip.duration >= opts.max_clip_s:
            late = [p for p in clip.pauses if p - clip.start >= opts.min_cut_s]
            events.extend(self._post(late[-1] if late else clip.start + opts.max_clip_s))
        return events

    def _keep_pre_roll(self, chunk: AudioChunk) -> None:
        self._pre_roll.append(chunk)
        while len(self._pre_roll) > 1 and chunk.end - self._pre_roll[1].start >= self.vad_options.pre_roll_s:
            self._pre_roll.popleft()

    def _start_clip(self, onset: float) -> None:
        """A new clip starts with the last ``pre_roll_s`` of audio before the onset."""
        before = [c for c in self._pre_roll if c.end <= onset + 1e-6]
        self._pre_roll.clear()
        if not before or onset - before[-1].end > 0.01:
            return
        audio = np.concatenate([c.samples for c in before])
        keep = min(len(audio), int(round(self.vad_options.pre_roll_s * SAMPLE_RATE)))
        if keep:
            self._clip.add(AudioChunk(audio[len(audio) - keep:], before[-1].end - keep / SAMPLE_RATE))

    def _prompt(self, words: list[Word] | None = None) -> str:
        """The vocabulary, then the last ``prompt_chars`` of committed text and ``words``
        (as locally)."""
        recent = words_text([*self.transcript.words[-80:], *(words or [])])[-self.options.prompt_chars:]
        return " ".join(p for p in (vocabulary_prompt(self.decode.vocabulary), recent) if p)

    def _post(self, until: float) -> list[Event]:
        audio, start = self._clip.take(until)
        if len(audio) / SAMPLE_RATE < self.options.min_clip_s:
            return []
        try:
            words = [w.shifted(start) for w in self._words(audio)]
        except AsrServerError as exc:
            self.failed = exc
            self._clip.clear()
            raise
        if self.transcript.segments:  # never before what was committed (a cut inside a word)
            last = self.transcript.segments[-1].end
            words = [w for w in words if w.end > last + 0.01]
        return [self._emit(words)] if words else []

    def _words(self, audio: np.ndarray) -> list[Word]:
        """The words of one clip (times from its start), continued after an early end as the
        local decoder does; an answer with no words although the prompt held recent text is
        asked again with the vocabulary alone (Whisper may repeat its prompt instead)."""
        duration = len(audio) / SAMPLE_RATE
        opts = self.options
        bare = vocabulary_prompt(self.decode.vocabulary)
        words: list[Word] = []
        seek = 0.0
        for _ in range(max(1, opts.max_passes)):
            part = audio[int(round(seek * SAMPLE_RATE)):]
            prompt = self._prompt(words)
            found = self._request(part, prompt)
            second = bool(words)
            if not found and prompt != bare and len(part) / SAMPLE_RATE >= 1.0:
                found, second = self._request(part, bare), True
            if second and found and sum(w.probability for w in found) / len(found) < opts.second_chance_min_probability:
                logger.debug("dropped %d unsure words of a second request", len(found))
                found = []
            if not found:
                break
            words.extend(w.shifted(seek) for w in found)
            if duration - words[-1].end < opts.continue_after_s:
                break
            seek = words[-1].end
        return cut_repetitions(words)

    def _request(self, audio: np.ndarray, prompt: str) -> list[Word]:
        """One request: the accepted words of the answer (times from the audio's start)."""
        t0 = time.perf_counter()
        try:
            payload = self.server.transcribe(audio, prompt=prompt, language=self.decode.language)
        finally:
            cost = time.perf_counter() - t0
            self.accurate.calls += 1
            self.accurate.seconds += cost
            self.decodes += 1
        duration = len(audio) / SAMPLE_RATE
        words = answer_words(payload, duration, prompt=prompt, options=self.decode)
        logger.debug("posted %.2f s of audio: %d words in %.2f s", duration, len(words), cost)
        return words

    def _emit(self, words: list[Word]) -> Segment:
        seg = Segment(self._next_id, words[0].start, words[-1].end, words_text(words), tuple(words), self._clock())
        self._next_id += 1
        self.transcript.add(seg)
        return seg


def transcribe_whole(server: AsrServer, audio: np.ndarray, decode: DecodeOptions | None = None,
                     piece_s: float = 600.0) -> list[Word]:
    """Offline transcription by the server (the benchmarks' baseline): the audio in pieces
    of ``piece_s`` (the server seeks through each), with the vocabulary as prompt."""
    decode = decode or DecodeOptions()
    prompt = vocabulary_prompt(decode.vocabulary)
    n = int(piece_s * SAMPLE_RATE)
    out: list[Word] = []
    for i in range(0, len(audio), n):
        piece = audio[i:i + n]
        payload = server.transcribe(piece, prompt=prompt, language=decode.language)
        out.extend(w.shifted(i / SAMPLE_RATE) for w in answer_words(payload, len(piece) / SAMPLE_RATE, options=decode))
    return out
