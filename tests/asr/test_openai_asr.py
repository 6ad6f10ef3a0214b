"""``[asr] engine = "openai"``: speech recognition by an OpenAI-compatible server.

Unit tests talk to a fake server (``httpx.MockTransport``) that reads the posted WAV; the
integration tests run a real faster-whisper-server process (``tests/asr_server.py``) on
the embedded Whisper base.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import logging
import secrets
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest

from asr.engine import AsrConfig, AsrEngine
from asr.errors import ConfigError, ScribeError
from asr.pipeline import run_stream
from asr.remote import (
    AsrServer,
    AsrServerError,
    ClipOptions,
    RemoteTranscriber,
    ServerOptions,
    answer_words,
    vocabulary_prompt,
)
from asr.sources import FileSource
from asr.types import SAMPLE_RATE, AudioChunk, Segment, Tentative
from asr.vad import VadOptions
from tests.asr_server import WhisperServer, asr_server  # noqa: F401 (the real server's session fixture)
from tests.fakes import ScheduledGate, ramp_audio

BASE = "http://gpu-pool:8000/v1"


# -- a fake server ----------------------------------------------------------------------------


def parse_form(request: httpx.Request) -> tuple[dict[str, list[str]], dict[str, tuple[str, str, bytes]]]:
    """The multipart form of a request: text fields, and files as (name, type, bytes)."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    fields: dict[str, list[str]] = {}
    files: dict[str, tuple[str, str, bytes]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        filename = part.get_filename()
        if filename is not None:
            files[str(name)] = (filename, part.get_content_type(), payload)
        else:
            fields.setdefault(str(name), []).append(payload.decode())
    return fields, files


def wav_samples(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32767.0


class FakeServer:
    """Answers ``/audio/transcriptions`` from a script: ``reply(clip_start, duration, n)``
    returns the JSON (``clip_start`` is read from the ramp audio). ``fail`` lists, per
    request number, an exception to raise or an HTTP status to answer."""

    def __init__(self, reply: Callable[[float, float, int], Any] | None = None,
                 fail: dict[int, Any] | None = None) -> None:
        self.reply = reply or self.default_reply
        self.fail = fail or {}
        self.requests: list[dict[str, Any]] = []

    @staticmethod
    def default_reply(start: float, duration: float, n: int) -> dict[str, Any]:
        """Three words from 0.2 s to 0.2 s before the clip's end (with word times)."""
        end = max(0.5, duration - 0.2)
        t = [0.2 + i * (end - 0.2) / 3 for i in range(4)]
        words = [{"word": w, "start": t[i], "end": t[i + 1], "probability": p}
                 for i, (w, p) in enumerate(((" ord", 0.9), (" nummer", 0.8), (f" {n}", 0.7)))]
        return {"text": f"ord nummer {n}", "segments": [
            {"id": 0, "start": 0.2, "end": end, "text": f" ord nummer {n}", "avg_logprob": -0.2, "no_speech_prob": 0.01,
             "words": words}]}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        n = len(self.requests)
        record: dict[str, Any] = {"method": request.method, "url": str(request.url), "headers": dict(request.headers)}
        self.requests.append(record)
        failure = self.fail.get(n)
        if isinstance(failure, Exception):
            raise failure
        if isinstance(failure, int):
            return httpx.Response(failure, json={"error": {"message": "secret patient words echoed"}})
        if request.method == "GET":
            return httpx.Response(200, json={"data": [{"id": "whisper-1"}]})
        fields, files = parse_form(request)
        audio = wav_samples(files["file"][2])
        start = float(audio[0]) * 1000.0  # ramp audio: each sample is its time / 1000
        record.update(fields=fields, files=files, start=start, duration=len(audio) / SAMPLE_RATE)
        return httpx.Response(200, json=self.reply(start, len(audio) / SAMPLE_RATE, n))


def server(fake: FakeServer, **kwargs: Any) -> AsrServer:
    environ = kwargs.pop("environ", {})
    return AsrServer(ServerOptions(BASE, retry_wait_s=0.0, **kwargs), transport=httpx.MockTransport(fake), environ=environ)


def transcribe(fake: FakeServer, speech: list[tuple[float, float]], total_s: float, *, chunk_s: float = 0.1,
               vocabulary: tuple[str, ...] = (), clip: ClipOptions | None = None, **kwargs: Any
               ) -> tuple[RemoteTranscriber, list[Any]]:
    from asr.decoder import DecodeOptions

    gate = ScheduledGate(speech, VadOptions(end_silence_s=0.5))
    t = RemoteTranscriber(server(fake, **kwargs), DecodeOptions(vocabulary=vocabulary), gate=gate, options=clip)
    audio = ramp_audio(total_s)
    n = int(chunk_s * SAMPLE_RATE)
    events: list[Any] = []
    for i in range(0, len(audio), n):
        t.insert_audio_chunk(AudioChunk(audio[i:i + n], i / SAMPLE_RATE))
        events.extend(t.process_iter())
    events.extend(t.finish())
    return t, events


# -- settings and engine ----------------------------------------------------------------------


def test_settings_carry_the_openai_engine_into_the_config() -> None:
    from app.settings import AsrSettings

    a = AsrSettings()
    assert (a.engine, a.api_base, a.api_model, a.api_key_env, a.api_timeout_s) == (
        "local", "", "whisper-1", "SCRIBE_ASR_API_KEY", 60.0)
    a = AsrSettings(engine="openai", api_base=BASE, api_model="large-v3", api_timeout_s=30)
    c = AsrConfig.from_settings(a)
    assert (c.engine, c.api_base, c.api_model, c.api_key_env, c.api_timeout_s) == (
        "openai", BASE, "large-v3", "SCRIBE_ASR_API_KEY", 30.0)
    with pytest.raises(ValueError):
        AsrSettings(engine="cloud")


def test_the_openai_engine_loads_no_local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import asr.engine

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a local model was resolved or loaded")

    for name in ("load_whisper", "resolve_whisper_model", "choose_compute"):
        monkeypatch.setattr(asr.engine, name, forbidden)
    engine = AsrEngine(AsrConfig(engine="openai", api_base=BASE + "/", api_model="large-v3"))
    assert engine.model is None and engine.model_dir is None
    assert engine.model_id == "openai:large-v3@gpu-pool:8000"
    assert (engine.device, engine.compute_type) == ("remote", "server")
    t = engine.transcriber(lambda: 0.0, vocabulary=("Metformin",))
    assert isinstance(t, RemoteTranscriber)
    assert t.decode.vocabulary == ("Metformin",) and t.decode.language == "no"


@pytest.mark.parametrize("base", ["", "   ", "gpu-pool:8000/v1", "ftp://gpu-pool/v1", "http://user:pw@gpu-pool/v1"])
def test_a_missing_or_bad_api_base_is_a_one_line_config_error(base: str) -> None:
    with pytest.raises(ConfigError) as info:
        AsrEngine(AsrConfig(engine="openai", api_base=base))
    text = str(info.value)
    assert "asr.api_base" in text and "\n" not in text and "pw" not in text


def test_an_unknown_engine_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="asr.engine"):
        AsrEngine(AsrConfig(engine="cloud"))


def test_language_maps_as_for_the_local_engine() -> None:
    for setting, sent in (("no", "no"), ("bokmål", "no"), ("nynorsk", "nn"), ("auto", None)):
        config = AsrConfig.from_settings(SimpleNamespace(
            model=None, device="cpu", compute_type="auto", cpu_threads=0, language=setting, beam_size=5,
            interim_beam_size=1, vocabulary=[], min_chunk_s=2.0, tentative_every_s=1.0, vad_aggressiveness=2,
            end_silence_s=0.5, tentative="live"))
        assert config.engine == "local" and config.decode.language == sent  # old settings objects still work
        fake = FakeServer()
        s = server(fake)
        s.transcribe(ramp_audio(1.0), language=config.decode.language)
        fields = fake.requests[0]["fields"]
        assert fields.get("language") == ([sent] if sent else None)


# -- the request --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_s", [0.1, 1.0])
def test_the_request_carries_the_form_fields_and_an_in_memory_wav(chunk_s: float) -> None:
    fake = FakeServer()
    t, events = transcribe(fake, [(1.5, 3.5)], 6.0, vocabulary=("Metformin", "Ramipril"), model="large-v3",
                           chunk_s=chunk_s)
    assert len(fake.requests) == 1
    req = fake.requests[0]
    assert req["method"] == "POST" and req["url"] == BASE + "/audio/transcriptions"
    f = req["fields"]
    assert f["model"] == ["large-v3"] and f["model_name"] == ["large-v3"]
    assert f["language"] == ["no"]
    assert f["response_format"] == ["verbose_json"] and f["temperature"] == ["0"]
    assert f["prompt"] == ["Metformin, Ramipril."]
    assert f["timestamp_granularities[]"] == ["segment", "word"]
    name, ctype, _ = req["files"]["file"]
    assert (name, ctype) == ("utterance.wav", "audio/wav")
    # the utterance with its pre-roll and the pause that ended it, not the silence around it
    assert req["start"] == pytest.approx(1.5 - 0.3, abs=0.05)
    assert 2.0 + 0.3 <= req["duration"] <= 2.0 + 0.3 + 0.5 + 0.1
    assert "authorization" not in req["headers"]
    assert [type(e) for e in events] == [Segment]


def test_the_prompt_adds_the_recent_committed_text() -> None:
    fake = FakeServer()
    transcribe(fake, [(1.0, 3.0), (5.0, 7.0), (9.0, 11.0)], 13.0, vocabulary=("Metformin",))
    prompts = [r["fields"]["prompt"][0] for r in fake.requests]
    assert prompts == ["Metformin.", "Metformin. ord nummer 0", "Metformin. ord nummer 0 ord nummer 1"]
    many = tuple(f"legemiddel{i}" for i in range(100))
    cut = vocabulary_prompt(many)  # about the local decoder's 100 tokens, cut at a comma
    assert len(cut) <= 300 and cut.endswith(".") and (", ".join(many) + ".").startswith(cut[:-1] + ",")


def test_the_api_key_goes_in_a_bearer_header(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeServer()
    server(fake, environ={"SCRIBE_ASR_API_KEY": " sk-test-123 "}).transcribe(ramp_audio(1.0))
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer sk-test-123"
    server(fake, api_key_env="GPU_POOL_KEY", environ={"GPU_POOL_KEY": "other"}).transcribe(ramp_audio(1.0))
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer other"
    monkeypatch.setenv("SCRIBE_ASR_API_KEY", "from-the-environment")
    s = AsrServer(ServerOptions(BASE), transport=httpx.MockTransport(fake))
    s.transcribe(ramp_audio(1.0))
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer from-the-environment"
    assert "from-the-environment" not in repr(s.__dict__.get("options"))


# -- the answer -----------------------------------------------------------------------------------


def test_segments_come_in_session_time_with_increasing_ids() -> None:
    fake = FakeServer()
    t, events = transcribe(fake, [(1.0, 3.0), (5.0, 7.5), (9.0, 9.8)], 12.0)
    segs = [e for e in events if isinstance(e, Segment)]
    assert not [e for e in events if isinstance(e, Tentative)]
    assert [s.id for s in segs] == [0, 1, 2]
    assert [s.text for s in segs] == ["ord nummer 0", "ord nummer 1", "ord nummer 2"]
    for seg, req in zip(segs, fake.requests, strict=True):
        assert seg.start == pytest.approx(req["start"] + 0.2, abs=0.05)
        assert seg.words[1].start == pytest.approx(req["start"] + 0.2 + (req["duration"] - 0.4) / 3, abs=0.05)
        assert seg.end == pytest.approx(req["start"] + req["duration"] - 0.2, abs=0.05)
        assert [w.probability for w in seg.words] == [0.9, 0.8, 0.7]
        assert seg.emitted_at >= seg.end
    assert all(a.end <= b.start for a, b in zip(segs, segs[1:], strict=False))
    assert t.transcript.text == "ord nummer 0 ord nummer 1 ord nummer 2"
    assert t.accurate.calls == 3 and t.tentative.calls == 0


def test_without_word_times_the_words_share_the_segment() -> None:
    payload = {"text": "hei du", "segments": [
        {"start": 1.0, "end": 2.0, "text": " hei du", "avg_logprob": -0.5, "no_speech_prob": 0.1}]}
    words = answer_words(payload, 3.0)
    assert [w.word for w in words] == [" hei", " du"]
    assert (words[0].start, words[-1].end) == (1.0, 2.0)
    assert words[0].probability == pytest.approx(np.exp(-0.5))
    # OpenAI's word granularity: top-level words without probability
    payload["words"] = [{"word": "hei", "start": 1.0, "end": 1.4}, {"word": "du", "start": 1.5, "end": 1.9}]
    words = answer_words(payload, 3.0)
    assert [(w.word, w.start, w.end) for w in words] == [(" hei", 1.0, 1.4), (" du", 1.5, 1.9)]
    # times outside the clip are clipped to it
    words = answer_words({"segments": [{"start": -1, "end": 9, "text": "x"}]}, 3.0)
    assert (words[0].start, words[0].end) == (0.0, 3.0)


def test_hallucinated_silence_and_prompt_copies_are_dropped() -> None:
    seg = {"start": 0.0, "end": 1.0, "avg_logprob": -0.2, "no_speech_prob": 0.0}
    assert answer_words({"segments": [{**seg, "text": " Teksting av Nicolai Winther"}]}, 2.0) == []
    assert answer_words({"segments": [{**seg, "text": " ja", "avg_logprob": -1.5, "no_speech_prob": 0.9}]}, 2.0) == []
    assert [w.word for w in answer_words({"segments": [{**seg, "text": " ja", "no_speech_prob": 0.9}]}, 2.0)] == [" ja"]
    prompt = "Metformin. jeg har hatt vondt i kneet siden mars"
    copy = {**seg, "text": " jeg har hatt vondt i kneet"}
    assert answer_words({"segments": [copy]}, 2.0, prompt=prompt) == []
    loop = " ".join(["som jeg glade i gutter"] * 4)
    assert len(answer_words({"segments": [{**seg, "text": loop}]}, 2.0)) == 5


def test_a_long_utterance_is_cut_at_a_pause_and_at_most_every_28_s() -> None:
    fake = FakeServer()
    transcribe(fake, [(0.5, 70.0)], 72.0, chunk_s=0.5)  # 70 s without a pause
    durations = [r["duration"] for r in fake.requests]
    assert len(durations) == 3 and max(durations) <= 28.0 + 1e-6
    starts = [r["start"] for r in fake.requests]
    assert all(b == pytest.approx(a + d, abs=0.05) for a, b, d in zip(starts, starts[1:], durations, strict=False))
    fake = FakeServer()
    # pauses of 0.3 s at 10 s and 17 s: the clip is cut at the first one after 15 s
    transcribe(fake, [(0.5, 10.0), (10.3, 17.0), (17.3, 25.0)], 27.0)
    cuts = [r["start"] + r["duration"] for r in fake.requests]
    assert cuts[0] == pytest.approx(17.0 + 0.1, abs=0.1)
    assert len(fake.requests) == 2


def test_an_answer_that_ends_early_is_continued_after_its_last_word() -> None:
    def reply(start: float, duration: float, n: int) -> dict[str, Any]:
        if n == 0:  # Whisper stopped after the first 3 s of the clip
            return {"segments": [{"start": 0.0, "end": 3.0, "text": " første del", "avg_logprob": -0.1}]}
        return {"segments": [{"start": 0.5, "end": duration - 0.5, "text": " andre del", "avg_logprob": -0.2}]}

    fake = FakeServer(reply=reply)
    t, events = transcribe(fake, [(1.0, 11.0)], 13.0)
    assert [e.text for e in events] == ["første del andre del"]
    first, second = fake.requests
    assert second["start"] == pytest.approx(first["start"] + 3.0, abs=0.05)
    assert second["fields"]["prompt"] == ["første del"]
    words = events[0].words
    assert words[2].start == pytest.approx(second["start"] + 0.5, abs=0.05)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(words, words[1:], strict=False))


def test_a_continuation_or_retry_must_be_confident() -> None:
    def reply(start: float, duration: float, n: int) -> dict[str, Any]:
        if n == 0:
            return {"segments": [{"start": 0.0, "end": 3.0, "text": " første del", "avg_logprob": -0.1}]}
        return {"segments": [{"start": 0.5, "end": 2.0, "text": " ja ja", "avg_logprob": -0.9, "no_speech_prob": 0.8}]}

    fake = FakeServer(reply=reply)
    t, events = transcribe(fake, [(1.0, 11.0)], 13.0)
    assert [e.text for e in events] == ["første del"]  # the applause after it gave unsure junk
    assert len(fake.requests) == 2  # the clip, then the continuation (its words were found, so no retry)


def test_an_answer_that_repeats_its_prompt_is_asked_again_with_the_vocabulary_alone() -> None:
    def reply(start: float, duration: float, n: int) -> dict[str, Any]:
        text = {0: " jeg har hatt vondt i kneet siden mars", 1: " jeg har hatt vondt i kneet", 2: " med andre ord"}[n]
        return {"segments": [{"start": 0.2, "end": duration - 0.2, "text": text, "avg_logprob": -0.3}]}

    fake = FakeServer(reply=reply)
    t, events = transcribe(fake, [(1.0, 4.0), (6.0, 8.0)], 10.0, vocabulary=("Metformin",))
    assert [e.text for e in events] == ["jeg har hatt vondt i kneet siden mars", "med andre ord"]
    assert [r["fields"]["prompt"][0] for r in fake.requests] == [
        "Metformin.", "Metformin. jeg har hatt vondt i kneet siden mars", "Metformin."]


def test_without_the_gate_everything_is_sent_in_clips_of_at_most_28_s() -> None:
    def reply(start: float, duration: float, n: int) -> dict[str, Any]:  # no word times
        return {"segments": [{"start": 0.2, "end": duration - 0.2, "text": f" ord nummer {n}", "avg_logprob": -0.2}]}

    fake = FakeServer(reply=reply)
    t = RemoteTranscriber(server(fake), use_vad=False)
    audio = ramp_audio(40.0)
    events = []
    for i in range(0, len(audio), 8000):
        t.insert_audio_chunk(AudioChunk(audio[i:i + 8000], i / SAMPLE_RATE))
        events.extend(t.process_iter())
    assert [r["duration"] for r in fake.requests] == [pytest.approx(28.0)]
    events.extend(t.finish())  # the rest at the end of the stream
    assert [r["duration"] for r in fake.requests] == [pytest.approx(28.0), pytest.approx(12.0)]
    assert [e.id for e in events] == [0, 1] and events[1].start == pytest.approx(28.2, abs=0.05)


def test_short_clicks_and_silence_are_not_sent() -> None:
    fake = FakeServer()
    t, events = transcribe(fake, [(1.0, 1.1)], 4.0)
    assert fake.requests == [] and events == []


def test_wipe_forgets_the_session() -> None:
    fake = FakeServer()
    t, _ = transcribe(fake, [(1.0, 3.0)], 5.0)
    t.insert_audio_chunk(AudioChunk(ramp_audio(1.0, 5.0), 5.0))
    t.wipe()
    assert t.transcript.segments == [] and t.buffer_seconds == 0.0


# -- failures ---------------------------------------------------------------------------------------


def test_a_connection_error_is_retried_once_then_one_line() -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    fake = FakeServer(fail={0: refused})
    server(fake).transcribe(ramp_audio(1.0))  # the retry succeeds
    assert len(fake.requests) == 2
    fake = FakeServer(fail={0: refused, 1: refused})
    with pytest.raises(AsrServerError) as info:
        server(fake).transcribe(ramp_audio(1.0))
    assert str(info.value) == (f"ASR server {BASE}: connection refused or host unreachable: is the server running?")
    assert len(fake.requests) == 2


def test_a_5xx_is_retried_once_a_4xx_and_a_timeout_are_not() -> None:
    fake = FakeServer(fail={0: 503})
    server(fake).transcribe(ramp_audio(1.0))
    assert len(fake.requests) == 2
    fake = FakeServer(fail={0: 500, 1: 502})
    with pytest.raises(AsrServerError, match="HTTP 502"):
        server(fake).transcribe(ramp_audio(1.0))
    fake = FakeServer(fail={0: 401})
    with pytest.raises(AsrServerError) as info:
        server(fake).transcribe(ramp_audio(1.0))
    assert "HTTP 401" in str(info.value) and "$SCRIBE_ASR_API_KEY" in str(info.value)
    assert "echoed" not in str(info.value)  # the body is never quoted
    assert len(fake.requests) == 1
    fake = FakeServer(fail={0: httpx.ReadTimeout("timed out")})
    with pytest.raises(AsrServerError, match="no answer within 60 s"):
        server(fake).transcribe(ramp_audio(1.0))
    assert len(fake.requests) == 1
    for status, hint in ((404, "/v1"), (400, "asr.api_model")):
        with pytest.raises(AsrServerError, match=hint):
            server(FakeServer(fail={0: status})).transcribe(ramp_audio(1.0))


def test_an_answer_that_is_not_verbose_json_is_an_error() -> None:
    fake = FakeServer(reply=lambda start, duration, n: ["not", "an", "object"])
    with pytest.raises(AsrServerError, match="verbose_json"):
        server(fake).transcribe(ramp_audio(1.0))


def test_a_failed_utterance_ends_the_stream_and_keeps_what_was_committed() -> None:
    from asr.sources import AudioSource

    class Ramp(AudioSource):
        live = False

        def chunks(self) -> Iterator[AudioChunk]:
            audio = ramp_audio(12.0)
            for i in range(0, len(audio), 1600):
                yield AudioChunk(audio[i:i + 1600], i / SAMPLE_RATE)

    refused = httpx.ConnectError("refused")
    fake = FakeServer(fail={1: refused, 2: refused})
    gate = ScheduledGate([(1.0, 3.0), (5.0, 7.0), (9.0, 11.0)], VadOptions(end_silence_s=0.5))
    seen: list[Any] = []
    result = run_stream(Ramp(), lambda clock: RemoteTranscriber(server(fake), gate=gate), on_event=seen.append)
    assert isinstance(result.error, AsrServerError) and isinstance(result.error, ScribeError)
    assert "connection refused" in str(result.error)
    assert [s.text for s in seen] == ["ord nummer 0"] == [s.text for s in result.transcript.segments]
    assert len(fake.requests) == 3  # the first utterance, the second one twice; nothing after


def test_a_failure_after_committed_segments_of_the_same_call_is_raised_next() -> None:
    fake = FakeServer(fail={1: 500, 2: 500})
    gate = ScheduledGate([(1.0, 2.0), (3.0, 4.0)], VadOptions(end_silence_s=0.5))
    t = RemoteTranscriber(server(fake), gate=gate)
    t.insert_audio_chunk(AudioChunk(ramp_audio(6.0), 0.0))  # both utterances in one call
    events = t.process_iter()
    assert [e.text for e in events] == ["ord nummer 0"]
    with pytest.raises(AsrServerError, match="HTTP 500"):
        t.process_iter()
    assert t.process_iter() == [] and t.finish() == []  # raised once; nothing more is sent
    assert len(fake.requests) == 3


def test_decoder_checks_that_the_server_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = AsrEngine(AsrConfig(engine="openai", api_base=BASE))
    fake = FakeServer()
    engine.server = server(fake)
    assert engine.decoder() is None
    assert fake.requests[-1]["method"] == "GET" and fake.requests[-1]["url"] == BASE + "/models"
    engine.server = server(FakeServer(fail={0: 404}))
    engine.decoder()  # not every server lists its models: any answer will do
    engine.server = server(FakeServer(fail={0: 403}))
    with pytest.raises(AsrServerError, match="API key"):
        engine.decoder()
    engine.server = server(FakeServer(fail={0: httpx.ConnectError("refused")}))
    with pytest.raises(AsrServerError, match="connection refused"):
        engine.decoder()


def test_the_log_holds_no_text_no_audio_and_no_key(caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-" + secrets.token_hex(8)
    secret_words = "Kari Nordmann har brystsmerter"

    def reply(start: float, duration: float, n: int) -> dict[str, Any]:
        return {"text": secret_words, "segments": [
            {"start": 0.1, "end": 1.0, "text": " " + secret_words, "avg_logprob": -0.1, "no_speech_prob": 0.0}]}

    caplog.set_level(logging.DEBUG)
    fake = FakeServer(reply=reply)
    t, events = transcribe(fake, [(1.0, 3.0), (5.0, 7.0)], 9.0, environ={"SCRIBE_ASR_API_KEY": key})
    assert events and all(secret_words in e.text for e in events)
    failing = FakeServer(fail={0: 500, 1: 500})
    with pytest.raises(AsrServerError):
        server(failing, environ={"SCRIBE_ASR_API_KEY": key}).transcribe(ramp_audio(1.0), prompt=secret_words)
    assert caplog.records  # something was logged (durations, counts, the error line)
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for word in ("Kari", "Nordmann", "brystsmerter", key, "echoed"):
        assert word not in logged


# -- a real server ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def remote_engine(asr_server: WhisperServer) -> AsrEngine:  # noqa: F811 (the fixture)
    return AsrEngine(AsrConfig(engine="openai", api_base=asr_server.base_url, api_model=asr_server.model))


@pytest.mark.integration
def test_a_real_server_transcribes_the_king_speech(
    engine: AsrEngine, remote_engine: AsrEngine, king_mp3: Path, king_txt: Path, king_audio: np.ndarray,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, record_property: Callable[[str, Any], None],
) -> None:
    from asr.evaluation import error_rates
    from asr.types import words_text

    key = "sk-" + secrets.token_hex(8)
    monkeypatch.setenv("SCRIBE_ASR_API_KEY", key)
    remote = AsrEngine(remote_engine.config)  # reads the key now
    assert remote.decoder() is None  # the server answers
    caplog.set_level(logging.DEBUG)
    result = run_stream(FileSource(king_mp3), remote.transcriber)
    assert result.error is None
    reference = king_txt.read_text(encoding="utf-8")
    remote_wer = error_rates(reference, result.transcript.text).wer
    offline_wer = error_rates(reference, words_text(engine.transcribe_offline(king_audio))).wer
    record_property("wer", {"remote_stream": remote_wer, "local_offline": offline_wer})
    print(f"WER remote streaming {remote_wer:.3f}, local offline {offline_wer:.3f}")
    assert remote_wer <= offline_wer + 0.10, (remote_wer, offline_wer)
    segs = result.transcript.segments
    duration = len(king_audio) / SAMPLE_RATE
    assert len(segs) >= 5 and [s.id for s in segs] == list(range(len(segs)))
    for s in segs:
        assert 0.0 <= s.start <= s.end <= duration + 1e-6
        assert all(s.start <= w.start <= w.end <= s.end for w in s.words)
    assert all(a.end <= b.start + 1e-6 for a, b in zip(segs, segs[1:], strict=False))
    assert result.paths["accurate"]["decodes"] >= len(segs)
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert key not in logged
    heard = {w for w in (x.strip(".,!?:;–").lower() for x in result.transcript.text.split()) if len(w) >= 5}
    assert heard and not [w for w in heard if w in logged.lower()]


@pytest.mark.integration
def test_a_real_server_transcribes_offline_and_stopping_it_is_one_line(remote_engine: AsrEngine,
                                                                        king_audio: np.ndarray) -> None:
    words = remote_engine.transcribe_offline(king_audio[: 20 * SAMPLE_RATE])
    assert len(words) >= 20 and all(0 <= w.start <= w.end <= 20.0 + 1e-6 for w in words)
    # a port nobody listens on: refused at once, one line
    dead = AsrEngine(AsrConfig(engine="openai", api_base="http://127.0.0.1:9/v1"))
    with pytest.raises(AsrServerError) as info:
        dead.decoder()
    assert str(info.value).startswith("ASR server http://127.0.0.1:9/v1: connection refused")
