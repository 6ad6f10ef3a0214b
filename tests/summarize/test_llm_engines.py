"""LLM engines behind one protocol: registry, CTranslate2, transformers, OpenAI-compatible HTTP.

The local engines run a tiny Qwen2 the fixtures make and train for seconds (no download);
the HTTP engine talks to ``tests/llm_server.py`` in its own process over a real socket.
"""

from __future__ import annotations

import difflib
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from summarize.errors import LlmError
from summarize.llm import registry
from summarize.llm.base import ChatMessage, Generation, LlmEngine
from summarize.llm.config import LlmConfig
from summarize.llm.ct2 import ChatTokenizer, CTranslate2Engine, model_context_length
from summarize.llm.engine import IncrementalDetokenizer, StopFilter

MESSAGES = [
    ChatMessage("system", "Du er en klinisk assistent. Skriv et kort notat."),
    ChatMessage("user", "Pasienten har hatt vondt i brystet i to dager, verre ved anstrengelse."),
]
SECRET = "sk-hemmelig-0123456789"


def _ct2(model_dir: Path, **kw: Any) -> CTranslate2Engine:
    kw.setdefault("device", "cpu")
    kw.setdefault("threads", 1)
    return CTranslate2Engine(model_dir, **kw)


@pytest.fixture(scope="module")
def ct2_engine(tiny_ct2_model: Path) -> Any:
    engine = _ct2(tiny_ct2_model, model_id="tiny-int8")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def ct2_f32_engine(tiny_ct2_f32_model: Path) -> Any:
    engine = _ct2(tiny_ct2_f32_model, model_id="tiny-f32", compute_type="float32")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def hf_engine(tiny_hf_model: Path) -> Any:
    from summarize.llm.hf import TransformersEngine

    engine = TransformersEngine(tiny_hf_model, model_id="tiny-hf", device="cpu", threads=1)
    yield engine
    engine.close()


@pytest.fixture(params=["project", "fallback"])
def resolver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Factories resolve llm.model with summarize.llm.models, or (fallback) by themselves."""
    if request.param == "fallback":
        monkeypatch.setitem(sys.modules, "summarize.llm.models", None)  # import fails
    return str(request.param)


@pytest.fixture(params=["ctranslate2", "transformers"])
def local_engine(request: pytest.FixtureRequest) -> Any:
    name = "ct2_engine" if request.param == "ctranslate2" else "hf_engine"
    return request.getfixturevalue(name)


def _collect(engine: Any, **kw: Any) -> tuple[Generation, list[str]]:
    pieces: list[str] = []
    gen = engine.generate(MESSAGES, on_token=pieces.append, **kw)
    return gen, pieces


# ------------------------------------------------------------------------------ config


def test_config_defaults_and_validation() -> None:
    cfg = LlmConfig()
    assert (cfg.engine, cfg.model, cfg.device, cfg.temperature) == ("auto", None, "auto", 0)
    assert cfg.verify_tls is True and cfg.timeout_s == 120 and cfg.connect_timeout_s == 5
    assert LlmConfig(verify_tls="false").verify_tls is False  # from an env var
    assert LlmConfig(verify_tls="/etc/ssl/sykehus-ca.pem").verify_tls == "/etc/ssl/sykehus-ca.pem"
    assert LlmConfig(engine=" OpenAI ").engine == "openai"
    assert LlmConfig(base_url="https://llm.sykehus.local/v1/").base_url == (
        "https://llm.sykehus.local/v1")
    for bad in ({"device": "tpu"}, {"base_url": "llm.sykehus.local"},
                {"base_url": "https://user:pw@llm.local/v1"}, {"timeout_s": 0},
                {"temperature": -1}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            LlmConfig(**bad)
    assert all(f.description for f in LlmConfig.model_fields.values())


def test_api_key_from_keyring_first_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    asked: list[tuple[str, str]] = []

    def fake_get(service: str, user: str) -> str | None:
        asked.append((service, user))
        return "fra-nokkelring" if user == "https://llm.a/v1" else None

    monkeypatch.setattr(keyring, "get_password", fake_get)
    monkeypatch.setenv("SCRIBE_LLM_API_KEY", "fra-miljo")
    key = LlmConfig(base_url="https://llm.a/v1").resolve_api_key()
    assert isinstance(key, SecretStr) and key.get_secret_value() == "fra-nokkelring"
    assert asked == [("ambient-scribe", "https://llm.a/v1")]
    assert "fra-nokkelring" not in repr(key)
    key = LlmConfig(base_url="https://llm.b/v1").resolve_api_key()
    assert key is not None and key.get_secret_value() == "fra-miljo"

    def broken(service: str, user: str) -> str:
        raise RuntimeError("no D-Bus")

    monkeypatch.setattr(keyring, "get_password", broken)
    key = LlmConfig(base_url="https://llm.a/v1").resolve_api_key()
    assert key is not None and key.get_secret_value() == "fra-miljo"
    monkeypatch.delenv("SCRIBE_LLM_API_KEY")
    assert LlmConfig(base_url="https://llm.a/v1").resolve_api_key() is None


# ------------------------------------------------------------------------------ registry


def test_registry_lists_builtin_engines() -> None:
    assert {"ctranslate2", "transformers", "openai"} <= set(registry.available_engines())


def test_unknown_engine_names_the_choices() -> None:
    with pytest.raises(LlmError) as err:
        registry.create_engine(LlmConfig(engine="llamafile"))
    msg = str(err.value)
    assert "llamafile" in msg
    for name in ("ctranslate2", "transformers", "openai"):
        assert name in msg
    assert "\n" not in msg


def test_register_a_custom_engine() -> None:
    made: list[LlmConfig] = []

    class Echo:
        name = "echo"
        model_id = "echo"
        context_length = 100

        def generate(self, messages: list[ChatMessage], **kw: Any) -> Generation:
            return Generation(messages[-1].content, 1, 0.0)

        def count_tokens(self, text: str) -> int:
            return len(text)

        def close(self) -> None:
            pass

    @registry.register("echo")
    def _make(config: LlmConfig) -> LlmEngine:
        made.append(config)
        return Echo()

    try:
        assert "echo" in registry.available_engines()
        cfg = LlmConfig(engine="echo")
        engine = registry.create_engine(cfg)
        assert engine.generate(MESSAGES).text == MESSAGES[-1].content
        assert made == [cfg]
    finally:
        registry.unregister("echo")
    assert "echo" not in registry.available_engines()


def test_create_ctranslate2_engine_by_name(tiny_ct2_model: Path, resolver: str) -> None:
    engine = registry.create_engine(
        LlmConfig(model=str(tiny_ct2_model), device="cpu", threads=1, max_context=256))
    try:
        assert isinstance(engine, CTranslate2Engine)
        assert (engine.name, engine.model_id) == ("ctranslate2", tiny_ct2_model.name)
        assert (engine.device, engine.compute_type) == ("cpu", "int8")
        assert engine.context_length == 256
        assert engine.generate(MESSAGES, max_tokens=3).tokens <= 3
    finally:
        engine.close()


def test_create_transformers_engine_by_name(tiny_hf_model: Path, resolver: str) -> None:
    from summarize.llm.hf import TransformersEngine

    engine = registry.create_engine(LlmConfig(engine="transformers", model=str(tiny_hf_model),
                                              device="cpu"))
    try:
        assert isinstance(engine, TransformersEngine)
        assert (engine.device, engine.compute_type) == ("cpu", "float32")
        assert engine.model_id == tiny_hf_model.name
    finally:
        engine.close()
    with pytest.raises(LlmError, match="cannot run in int8"):
        TransformersEngine(tiny_hf_model, device="cpu", dtype="int8")


def test_openai_engine_needs_a_base_url() -> None:
    with pytest.raises(LlmError, match="llm.base_url"):
        registry.create_engine(LlmConfig(engine="openai"))


# ------------------------------------------------------------------------------ text helpers


def test_stop_filter_never_emits_part_of_a_stop_string() -> None:
    f = StopFilter(["\n## Slutt", "STOPP"])
    out = [f.feed("Anamnese: vondt"), f.feed(" i kneet\n"), f.feed("## Sl"), f.feed("utt og mer")]
    assert out == ["Anamnese: vondt", " i kneet", "", ""]
    assert f.stopped and f.text == "Anamnese: vondt i kneet" and f.finish() == ""
    g = StopFilter(["STOPP"])
    assert g.feed("ST") == "" and g.feed("ORT") == "STORT" and g.finish() == ""
    h = StopFilter(["<|"])
    assert h.feed("a<") == "a" and h.finish() == "<" and h.text == "a<"
    assert StopFilter(None).feed("x") == "x"


def test_incremental_detokenizer_keeps_multibyte_characters_whole(tiny_hf_model: Path) -> None:
    tok = ChatTokenizer(tiny_hf_model)
    text = "Blødning 🙂 i øret – 38,5 °C, æ å"
    ids = tok.encode(text)
    assert len(ids) > len(text.split())  # emoji and dashes split into byte tokens
    detok = IncrementalDetokenizer(tok.decode)
    pieces = [detok.add(i) for i in ids] + [detok.flush()]
    assert "".join(pieces) == text == tok.decode(ids)
    assert not any("\ufffd" in p for p in pieces)


def test_context_length_from_config_and_cap(tiny_ct2_model: Path, copy_model: Any) -> None:
    assert model_context_length(tiny_ct2_model) == 512
    assert model_context_length(tiny_ct2_model, 128) == 128
    assert model_context_length(tiny_ct2_model, 4096) == 512
    bare = copy_model(tiny_ct2_model)
    (bare / "config.json").write_text('{"eos_token": "<|im_end|>"}', encoding="utf-8")
    assert model_context_length(bare) == 4096  # stated nowhere: a safe default


# ------------------------------------------------------------------------------ local engines


def test_streaming_pieces_add_up_to_the_text(local_engine: Any) -> None:
    gen, pieces = _collect(local_engine, max_tokens=40)
    assert gen.text and "".join(pieces) == gen.text
    assert 0 < gen.tokens <= 40 and gen.prompt_tokens == local_engine.count_tokens(
        local_engine.tokenizer.render(MESSAGES))
    assert gen.seconds > 0 and gen.finish_reason in ("stop", "length")
    again = local_engine.generate(MESSAGES, max_tokens=40)
    assert again.text == gen.text  # greedy is deterministic


def test_max_tokens_ends_with_length(local_engine: Any) -> None:
    gen, pieces = _collect(local_engine, max_tokens=5)
    assert (gen.tokens, gen.finish_reason) == (5, "length")
    assert "".join(pieces) == gen.text


def test_stop_string_cuts_the_text(local_engine: Any) -> None:
    full = local_engine.generate(MESSAGES, max_tokens=40).text
    # a stop string from the middle of the greedy text: the answer ends just before it
    start = next(i for i in range(len(full) // 3, len(full) - 2)
                 if full[i:i + 2].isprintable() and full[i:i + 2].strip() and
                 "\ufffd" not in full[i:i + 2])
    stop = full[start:start + 2]
    gen, pieces = _collect(local_engine, max_tokens=40, stop=["NEVER-THERE", stop])
    assert gen.text == full[:full.index(stop)]
    assert gen.finish_reason == "stop" and "".join(pieces) == gen.text
    assert gen.tokens < 40


def test_context_limits_output_and_refuses_a_long_prompt(tiny_ct2_model: Path) -> None:
    probe = _ct2(tiny_ct2_model)
    prompt_tokens = probe.count_tokens(probe.tokenizer.render(MESSAGES))
    probe.close()
    engine = _ct2(tiny_ct2_model, max_context=prompt_tokens + 3)
    try:
        assert engine.context_length == prompt_tokens + 3
        gen = engine.generate(MESSAGES, max_tokens=100)
        assert gen.tokens <= 3 and gen.prompt_tokens == prompt_tokens
        long = [ChatMessage("user", "Pasienten har hatt vondt i brystet. " * 100)]
        with pytest.raises(LlmError, match="prompt is .* tokens"):
            engine.generate(long)
    finally:
        engine.close()


def test_callback_error_propagates_and_engine_recovers(ct2_engine: Any) -> None:
    def boom(piece: str) -> None:
        raise KeyError("ui gone")

    with pytest.raises(KeyError):
        ct2_engine.generate(MESSAGES, max_tokens=30, on_token=boom)
    assert ct2_engine.generate(MESSAGES, max_tokens=4).tokens == 4


def test_sampling_at_temperature(ct2_engine: Any) -> None:
    gen = ct2_engine.generate(MESSAGES, max_tokens=8, temperature=1.0)
    assert 0 < gen.tokens <= 8


def test_batched_generation_matches_one_by_one(ct2_f32_engine: Any) -> None:
    """generate_batch gives each prompt its own greedy answer and its own length limit."""
    prompts = [MESSAGES, [MESSAGES[0], ChatMessage("user", "Hoste i en uke, ingen feber.")],
               [MESSAGES[0], ChatMessage("user", "Vondt i kneet etter fotball.")]]
    limits = [40, 6, 24]
    batch = ct2_f32_engine.generate_batch(prompts, max_tokens=limits)
    single = [ct2_f32_engine.generate(p, max_tokens=m) for p, m in zip(prompts, limits, strict=True)]
    assert [g.tokens for g in batch] == [g.tokens for g in single]
    for b, s, limit in zip(batch, single, limits, strict=True):
        assert b.tokens <= limit and b.prompt_tokens == s.prompt_tokens
        # padding in a batch may flip a close call in the last digits; the text stays the same
        assert difflib.SequenceMatcher(None, b.text, s.text).ratio() >= 0.8
    assert batch[1].finish_reason == "length" and batch[1].tokens == 6
    assert ct2_f32_engine.generate_batch([], max_tokens=[]) == []


def test_generate_many_batches_where_the_engine_can() -> None:
    from summarize.llm.base import generate_many

    class OneByOne:
        def __init__(self) -> None:
            self.calls: list[int] = []
            self.batches: list[int] = []

        def generate(self, messages: list[ChatMessage], *, max_tokens: int, temperature: float) -> Generation:
            self.calls.append(max_tokens)
            return Generation(messages[-1].content.upper(), 1, 0.1)

    class Batching(OneByOne):
        def generate_batch(self, prompts: Any, *, max_tokens: Any, temperature: float) -> list[Generation]:
            self.batches.append(len(prompts))
            return [Generation(p[-1].content[::-1], 1, 0.1) for p in prompts]

    prompts = [[ChatMessage("user", "ab")], [ChatMessage("user", "cd")]]
    one = OneByOne()
    assert [g.text for g in generate_many(one, prompts, max_tokens=[5, 7])] == ["AB", "CD"]  # type: ignore[arg-type]
    assert one.calls == [5, 7]
    many = Batching()
    assert [g.text for g in generate_many(many, prompts, max_tokens=[5, 7])] == ["ba", "dc"]  # type: ignore[arg-type]
    assert many.batches == [2] and many.calls == []
    assert [g.text for g in generate_many(many, prompts[:1], max_tokens=[5])] == ["AB"]  # type: ignore[arg-type]


def test_transformers_and_ctranslate2_agree_on_greedy_text(
    hf_engine: Any, ct2_f32_engine: Any, ct2_engine: Any
) -> None:
    hf = hf_engine.generate(MESSAGES, max_tokens=48)
    f32 = ct2_f32_engine.generate(MESSAGES, max_tokens=48)
    int8 = ct2_engine.generate(MESSAGES, max_tokens=48)
    assert hf.prompt_tokens == f32.prompt_tokens == int8.prompt_tokens
    assert f32.text == hf.text  # same weights, same arithmetic: same greedy text
    assert f32.tokens == hf.tokens and f32.finish_reason == hf.finish_reason
    # int8 rounding may flip a close call; the text stays (nearly) the same
    assert difflib.SequenceMatcher(None, int8.text, hf.text).ratio() >= 0.8


def test_timings_of_both_engines(hf_engine: Any, ct2_engine: Any, ct2_f32_engine: Any,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Reports tokens/s on the tiny model (sanity, not the benchmark of the real one)."""
    rates: dict[str, float] = {}
    for label, engine in (("transformers fp32", hf_engine), ("ctranslate2 fp32", ct2_f32_engine),
                          ("ctranslate2 int8", ct2_engine)):
        engine.generate(MESSAGES, max_tokens=4)  # warm-up
        best = 0.0
        for _ in range(3):
            gen = engine.generate(MESSAGES, max_tokens=64)
            best = max(best, gen.tokens_per_second)
        rates[label] = best
    with capsys.disabled():
        print("\n  tiny Qwen2, 1 thread, best of 3 (up to 64 tokens): " + ", ".join(
            f"{k} {v:.0f} tok/s" for k, v in rates.items()))
    assert all(v > 0 for v in rates.values())


def test_closed_engine_refuses(tiny_ct2_model: Path) -> None:
    engine = _ct2(tiny_ct2_model)
    engine.close()
    engine.close()  # twice is fine
    with pytest.raises(LlmError, match="closed"):
        engine.generate(MESSAGES)


# ------------------------------------------------------------------------------ broken models


def test_missing_model_dir_names_the_path(tmp_path: Path, resolver: str) -> None:
    missing = tmp_path / "finnes-ikke"
    with pytest.raises(LlmError) as err:
        _ct2(missing)
    assert str(missing) in str(err.value) and "does not exist" in str(err.value)
    with pytest.raises(LlmError, match="finnes-ikke"):
        registry.create_engine(LlmConfig(model=str(missing), device="cpu"))
    with pytest.raises(LlmError, match="finnes-ikke"):
        registry.create_engine(LlmConfig(engine="transformers", model=str(missing)))


def test_incomplete_or_wrong_model_dirs(tiny_ct2_model: Path, tiny_hf_model: Path,
                                        copy_model: Any) -> None:
    # a transformers directory given to the CTranslate2 engine
    with pytest.raises(LlmError, match=r"incomplete \(missing model.bin\).*scribe models import"):
        _ct2(tiny_hf_model)
    no_tok = copy_model(tiny_ct2_model)
    (no_tok / "tokenizer.json").unlink()
    with pytest.raises(LlmError, match=f"{no_tok}.*tokenizer"):
        _ct2(no_tok)
    broken = no_tok.parent / "broken"
    broken.mkdir()
    for f in tiny_ct2_model.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.bin").write_bytes(b"not a model")
    with pytest.raises(LlmError, match=f"cannot load the LLM in {broken}"):
        _ct2(broken)


# ------------------------------------------------------------------------------ HTTP engine


def _openai(base_url: str, **kw: Any) -> Any:
    from summarize.llm.openai_http import OpenAICompatibleEngine

    kw.setdefault("api_model", "test-model")
    return OpenAICompatibleEngine(base_url, **kw)


REPLY = "Pasienten har hatt brystsmerter i to dager. Blodtrykk 140/90."


def test_openai_streams_the_reply(llm_server: Any) -> None:
    server = llm_server("ok", "--reply", REPLY)
    engine = _openai(server.base_url)
    try:
        gen, pieces = _collect(engine, max_tokens=200)
    finally:
        engine.close()
    assert gen.text == REPLY and "".join(pieces) == REPLY and len(pieces) > 5
    assert gen.finish_reason == "stop" and gen.tokens == len(pieces)  # from the usage chunk
    assert gen.prompt_tokens == 10
    last = server.last_request()
    assert last["path"] == "/v1/chat/completions"
    body = last["body"]
    assert body["stream"] is True and body["model"] == "test-model" and body["max_tokens"] == 200
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in MESSAGES]
    assert "Authorization" not in last["headers"]


def test_openai_batch_sends_concurrent_requests(llm_server: Any) -> None:
    server = llm_server("ok", "--reply", REPLY)
    engine = _openai(server.base_url)
    try:
        gens = engine.generate_batch([MESSAGES, MESSAGES[:1], MESSAGES], max_tokens=[200, 50, 200])
    finally:
        engine.close()
    assert [g.text for g in gens] == [REPLY] * 3 and all(g.finish_reason == "stop" for g in gens)


def test_openai_api_key_reaches_the_server_and_never_the_logs(
    llm_server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import keyring

    server = llm_server("ok", "--reply", REPLY)
    monkeypatch.setattr(keyring, "get_password", lambda service, user: None)
    monkeypatch.setenv("SCRIBE_LLM_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    config = LlmConfig(engine="openai", base_url=server.base_url, api_model="test-model")
    engine = registry.create_engine(config)
    try:
        gen = engine.generate(MESSAGES)
    finally:
        engine.close()
    assert gen.text == REPLY
    assert server.last_request()["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert caplog.records  # something was logged ...
    assert SECRET not in caplog.text  # ... but never the key
    assert MESSAGES[1].content not in caplog.text and REPLY not in caplog.text
    assert SECRET not in repr(config) and SECRET not in repr(engine.__dict__)


def test_openai_key_from_keyring(llm_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring

    server = llm_server("ok", "--reply", REPLY)
    monkeypatch.delenv("SCRIBE_LLM_API_KEY", raising=False)
    monkeypatch.setattr(keyring, "get_password",
                        lambda service, user: "kr-key" if user == server.base_url else None)
    engine = registry.create_engine(LlmConfig(engine="openai", base_url=server.base_url))
    try:
        engine.generate(MESSAGES, max_tokens=3)
        assert engine.model_id == "test-model"  # asked the server's /models
    finally:
        engine.close()
    last = server.last_request()
    assert last["headers"]["Authorization"] == "Bearer kr-key"
    assert last["body"]["model"] == "test-model"


def test_openai_length_and_stop(llm_server: Any) -> None:
    server = llm_server("ok", "--reply", REPLY)
    engine = _openai(server.base_url)
    try:
        short = engine.generate(MESSAGES, max_tokens=3)
        assert (short.text, short.finish_reason) == (REPLY[:12], "length")
        # the server ignores stop: the client cuts, even across chunks
        gen, pieces = _collect(engine, stop=["dager"])
        assert gen.text == REPLY[:REPLY.index("dager")] == "".join(pieces)
        assert gen.finish_reason == "stop"
        assert server.last_request()["body"]["stop"] == ["dager"]
        assert engine.count_tokens("x" * 35) == 10 and engine.context_length == 8192
    finally:
        engine.close()


def test_openai_accepts_a_non_streaming_answer(llm_server: Any) -> None:
    server = llm_server("json", "--reply", REPLY)
    engine = _openai(server.base_url)
    try:
        gen, pieces = _collect(engine)
    finally:
        engine.close()
    assert gen.text == REPLY == "".join(pieces) and gen.tokens == len(REPLY) // 4 + 1


def test_openai_server_down(free_port: int) -> None:
    engine = _openai(f"http://127.0.0.1:{free_port}/v1", connect_timeout_s=2)
    try:
        with pytest.raises(LlmError, match="cannot connect .*127.0.0.1") as err:
            engine.generate(MESSAGES)
    finally:
        engine.close()
    assert "\n" not in str(err.value)


def test_openai_slow_server_times_out(llm_server: Any) -> None:
    server = llm_server("slow", "--delay", "3")
    engine = _openai(server.base_url, timeout_s=0.5)
    t0 = time.perf_counter()
    try:
        with pytest.raises(LlmError, match="timeout"):
            engine.generate(MESSAGES)
    finally:
        engine.close()
    assert time.perf_counter() - t0 < 2.5


@pytest.mark.parametrize("mode", ["garbage", "nochoices"])
def test_openai_garbage_is_an_invalid_response(llm_server: Any, mode: str) -> None:
    engine = _openai(llm_server(mode).base_url)
    try:
        with pytest.raises(LlmError, match="returned an invalid response"):
            engine.generate(MESSAGES)
    finally:
        engine.close()


def test_openai_cut_stream(llm_server: Any) -> None:
    engine = _openai(llm_server("cut").base_url)
    try:
        with pytest.raises(LlmError, match="ended the answer early"):
            engine.generate(MESSAGES)
    finally:
        engine.close()


def test_openai_http_500_without_the_body(llm_server: Any) -> None:
    engine = _openai(llm_server("error500").base_url)
    try:
        with pytest.raises(LlmError, match="HTTP 500") as err:
            engine.generate(MESSAGES)
    finally:
        engine.close()
    assert "brystet" not in str(err.value)  # the body echoed the patient text


def test_openai_missing_ca_bundle(tmp_path: Path) -> None:
    with pytest.raises(LlmError, match="CA bundle .*mangler.pem"):
        _openai("https://llm.sykehus.local/v1", verify_tls=str(tmp_path / "mangler.pem"))


def test_openai_tls_is_verified(llm_server: Any, tls_cert: tuple[Path, Path],
                                caplog: pytest.LogCaptureFixture) -> None:
    cert, key = tls_cert
    server = llm_server("ok", "--reply", REPLY, "--tls-cert", str(cert), "--tls-key", str(key))
    assert server.base_url.startswith("https://")
    engine = _openai(server.base_url)  # system CAs only: the hospital's cert is unknown
    try:
        with pytest.raises(LlmError, match="TLS certificate .* llm.verify_tls"):
            engine.generate(MESSAGES)
    finally:
        engine.close()
    for verify in (str(cert), False):  # the hospital's CA bundle; or (tests) no check
        engine = _openai(server.base_url, verify_tls=verify)
        try:
            assert engine.generate(MESSAGES).text == REPLY
        finally:
            engine.close()
    assert "verification is off" in caplog.text


def test_openai_fits_max_tokens_into_the_context(llm_server: Any) -> None:
    server = llm_server("ok", "--reply", REPLY)
    engine = _openai(server.base_url, max_context=100)
    try:
        assert engine.context_length == 100
        engine.generate(MESSAGES, max_tokens=512)
        sent = server.last_request()["body"]["max_tokens"]
        estimate = sum(engine.count_tokens(m.content) + 4 for m in MESSAGES)
        assert sent == 100 - estimate
        engine.generate([ChatMessage("user", "x" * 1000)], max_tokens=50)  # the server decides
        assert server.last_request()["body"]["max_tokens"] == 50
    finally:
        engine.close()


def test_ctranslate2_caches_the_prefix_drafting_calls_share() -> None:
    from summarize.llm.ct2 import MIN_STATIC_TOKENS, CTranslate2Engine

    eng = object.__new__(CTranslate2Engine)  # the prefix logic only; no model needed
    eng._last_prompt, eng._static = [], []
    rules = [f"r{i}" for i in range(MIN_STATIC_TOKENS + 10)]
    assert eng._split_static([*rules, "a", "b"]) == ([], [*rules, "a", "b"])  # first call: nothing to share
    assert eng._split_static([*rules, "c"]) == (rules, ["c"])  # second: the shared prefix is cached
    assert eng._split_static([*rules, "d", "e"]) == (rules, ["d", "e"])  # and reused
    short = ["x", "y"]
    assert eng._split_static(short) == ([], short)  # too short to be worth caching
    assert eng._split_static(rules) == ([], rules)  # a prompt must keep at least one own token


def test_openmp_threads_sleep_while_waiting() -> None:
    """llama.cpp and CTranslate2 (libgomp) must not spin-wait: two decodes side by side on
    2 cores took 40x longer spinning. Importing the core sets the policy; an IT override wins."""
    import os
    import subprocess
    import sys

    code = "import summarize.llm.config, os; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_plain_http_to_another_machine_is_refused_unless_allowed(caplog: pytest.LogCaptureFixture) -> None:
    """#17 item 8: the transcript and the Bearer key must not cross the network in clear text."""
    from summarize.llm.openai_http import OpenAICompatibleEngine

    for url in ("http://10.1.2.3:8000/v1", "http://llm.sykehus.local/v1"):
        with pytest.raises(LlmError, match="plain http to another machine") as err:
            registry.create_engine(LlmConfig(engine="openai", base_url=url))
        assert "llm.allow_http" in str(err.value) and "\n" not in str(err.value)
    # this machine, https, or IT's explicit lab setting: allowed (the lab one with a warning)
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "https://llm.sykehus.local/v1"):
        OpenAICompatibleEngine(url).close()
    with caplog.at_level(logging.WARNING):
        registry.create_engine(LlmConfig(engine="openai", base_url="http://10.1.2.3:8000/v1", allow_http=True)).close()
    assert "unencrypted" in caplog.text
