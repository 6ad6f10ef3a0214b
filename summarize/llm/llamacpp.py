"""llama.cpp engine (the default): a GGUF chat model run as it is, memory-mapped.

Measured on a 2-core CPU, the embedded Qwen2.5-Coder-1.5B Q4_K_M decodes about three
times faster here than its CTranslate2 int8 conversion (the 4-bit weights are fewer bytes
to read per token), needs no conversion step, and decoding can be constrained to a JSON
schema (:mod:`summarize.llm.structured`), so the small model's structured output parses.

* **One model per process.** Engines on the same file share one loaded ``Llama``
  (:class:`_Loaded`, reference-counted); calls are serialised by its lock, so several
  consultations can share it from different threads.
* **Prefix states.** Drafting calls of one kind share a long prefix (rules, the template's
  sections, worked examples). When two prompts share at least ``MIN_STATIC_TOKENS``, the
  model state after that prefix is saved (only the KV cells in use, a few MB) and
  restored for later prompts that start with it, so the prefix is evaluated once per
  process however the calls of different kinds (line drafting, records, several
  consultations) interleave. llama.cpp also reuses the KV cache of the previous call up
  to the first different token.
* **Threads** = physical cores (hyper-threads slow llama.cpp down); context =
  ``min(the model's training context, llm.max_context or 4096)``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from summarize.errors import LlmError
from summarize.llm.base import ChatMessage, Generation
from summarize.llm.config import LlmConfig
from summarize.llm.engine import EngineBase, IncrementalDetokenizer, Request, local_options, render_chat
from summarize.llm.gguf_file import GgufModel, check_gguf
from summarize.llm.registry import register

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT = 4096
MIN_STATIC_TOKENS = 64
MAX_PREFIX_STATES = 6
BUILD_HINT = "pip install --force-reinstall --no-binary llama-cpp-python llama-cpp-python==0.3.36"


def physical_cores() -> int:
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
    except Exception:  # psutil missing or /proc unreadable
        n = None
    return max(1, n or os.cpu_count() or 1)


def _import_llama() -> Any:
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:
        raise LlmError(
            f"the llama.cpp engine is not installed ({str(exc).splitlines()[0] if str(exc) else exc}): "
            f"run ./install.sh again, or {BUILD_HINT}"
        ) from None
    return llama_cpp


class _Tokens:
    """The adapter :func:`summarize.llm.engine.stream_tokens` needs (end of turn is handled
    by the caller, so ``eos_ids`` is empty)."""

    eos_ids: frozenset[int] = frozenset()

    def __init__(self, llm: Any) -> None:
        self._llm = llm

    def decode(self, ids: list[int]) -> str:
        return bytes(self._llm.detokenize(ids)).decode("utf-8", errors="replace")

    def detokenizer(self) -> IncrementalDetokenizer:
        return IncrementalDetokenizer(self.decode)


class _Loaded:
    """One ``Llama`` and what belongs to it: the lock, the chat formatter, prefix states."""

    def __init__(self, model: GgufModel, n_ctx: int, threads: int, gpu_layers: int) -> None:
        llama_cpp = _import_llama()
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        t0 = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(model.path),
                n_ctx=n_ctx,
                n_batch=512,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=gpu_layers,
                use_mmap=True,
                seed=0,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise LlmError(
                f"llama.cpp cannot load {model.path} (architecture {model.header.architecture}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): use a GGUF of a "
                "chat model this llama.cpp supports (Llama, Mistral, Qwen2/3, Gemma 3), or update "
                "llama-cpp-python"
            ) from None
        self.load_s = time.perf_counter() - t0
        self.model = model
        self.lock = threading.Lock()
        self.refs = 0
        self.vocab = self.llm._model.vocab
        self.llama_cpp = llama_cpp
        eos_id, bos_id = self.llm.token_eos(), self.llm.token_bos()
        self.bos = self.llm._model.token_get_text(bos_id) if bos_id != -1 else ""
        eos = self.llm._model.token_get_text(eos_id) if eos_id != -1 else ""
        self.formatter = Jinja2ChatFormatter(
            template=model.chat_template, eos_token=eos, bos_token=self.bos,
            add_generation_prompt=True,
        )
        self.tokens = _Tokens(self.llm)
        self.states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self.last_prompt: list[int] = []
        self.grammars: dict[str, Any] = {}
        self.stats = {"calls": 0, "prompt_tokens": 0, "evaluated_tokens": 0, "prefix_restores": 0,
                      "prefix_saves": 0}

    # ------------------------------------------------------------------ prompt

    def render(self, messages: list[ChatMessage]) -> tuple[str, bool]:
        res = render_chat(lambda chat: self.formatter(messages=cast(Any, chat)), messages,
                          lambda exc: f"the chat template of {self.model.path.name} failed: {exc}")
        return res.prompt, bool(getattr(res, "added_special", False))

    def tokenize(self, text: str, *, add_bos: bool, special: bool = True) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def prompt_ids(self, messages: list[ChatMessage]) -> list[int]:
        prompt, added = self.render(messages)
        starts_with_bos = bool(self.bos) and prompt.startswith(self.bos)
        return self.tokenize(prompt, add_bos=not (added or starts_with_bos))

    def grammar(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
        g = self.grammars.get(key)
        if g is None:
            from llama_cpp.llama_grammar import LlamaGrammar

            try:
                g = LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception as exc:
                raise LlmError(f"the JSON schema cannot be turned into a grammar: {exc}") from None
            self.grammars[key] = g
        return g

    # ------------------------------------------------------------------ prefix states

    def _cached(self) -> list[int]:
        return [int(t) for t in self.llm.input_ids[: self.llm.n_tokens]]

    def _save(self, key: tuple[int, ...]) -> None:
        lc, ctx = self.llama_cpp, self.llm._ctx.ctx
        size = int(lc.llama_state_get_size(ctx))
        buf = (ctypes.c_uint8 * size)()
        n = int(lc.llama_state_get_data(ctx, buf, size))
        self.states[key] = ctypes.string_at(buf, n)
        self.states.move_to_end(key)
        while len(self.states) > MAX_PREFIX_STATES:
            self.states.popitem(last=False)
        self.stats["prefix_saves"] += 1

    def _restore(self, key: tuple[int, ...]) -> None:
        data = self.states[key]
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if int(self.llama_cpp.llama_state_set_data(self.llm._ctx.ctx, buf, len(data))) != len(data):
            raise LlmError("llama.cpp could not restore a cached prompt state")
        self.llm.input_ids[: len(key)] = key
        self.llm.n_tokens = len(key)
        self.llm._requires_eval = True
        self.states.move_to_end(key)
        self.stats["prefix_restores"] += 1

    def prepare(self, ids: list[int], use_cache: bool) -> int:
        """Bring the model state to the longest known prefix of ``ids``; returns how many
        prompt tokens are already evaluated."""
        if not use_cache:
            self.llm.reset()
            return 0
        cached = _common(self._cached(), ids)
        best = max((k for k in self.states if len(k) < len(ids) and tuple(ids[: len(k)]) == k),
                   key=len, default=())
        if len(best) > cached:
            self._restore(best)
            cached = len(best)
        shared = min(_common(self.last_prompt, ids), len(ids) - 1)
        self.last_prompt = ids
        if shared >= MIN_STATIC_TOKENS and shared > len(best):
            # a new static prefix: evaluate exactly it, keep its state
            if cached > shared:
                self.llm._ctx.kv_cache_seq_rm(-1, shared, -1)
                self.llm.n_tokens = shared
            else:
                self.llm.n_tokens = cached
                self.llm.eval(ids[cached:shared])
            self._save(tuple(ids[:shared]))
            cached = shared
        return min(cached, len(ids) - 1)

    def is_eog(self, token: int) -> bool:
        return bool(self.llama_cpp.llama_vocab_is_eog(self.vocab, token))


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


_loaded: dict[tuple[str, int, int, int], _Loaded] = {}
_loaded_lock = threading.Lock()


def _acquire(model: GgufModel, n_ctx: int, threads: int, gpu_layers: int) -> _Loaded:
    key = (str(model.path.resolve()), n_ctx, threads, gpu_layers)
    with _loaded_lock:
        loaded = _loaded.get(key)
        if loaded is None:
            loaded = _Loaded(model, n_ctx, threads, gpu_layers)
            _loaded[key] = loaded
            logger.info("loaded LLM %s with llama.cpp in %.2f s (context %d, %d threads)",
                        model.path.name, loaded.load_s, n_ctx, threads)
        loaded.refs += 1
        return loaded


def _release(loaded: _Loaded) -> None:
    with _loaded_lock:
        loaded.refs -= 1
        if loaded.refs > 0:
            return
        for key, value in list(_loaded.items()):
            if value is loaded:
                del _loaded[key]
    with loaded.lock:
        loaded.states.clear()
        try:
            loaded.llm.close()
        except Exception:  # already closed
            pass


class LlamaCppEngine(EngineBase):
    """A GGUF chat model run by llama.cpp (``llama-cpp-python``)."""

    name = "llamacpp"
    constrained_json = True
    preferred_batch = 1

    def __init__(
        self,
        gguf: Path | str,
        *,
        model_id: str | None = None,
        device: str = "auto",
        threads: int = 0,
        max_context: int | None = None,
        temperature: float = 0.0,
        prefix_cache: bool = True,
    ) -> None:
        model = check_gguf(Path(gguf))
        llama_cpp = _import_llama()
        gpu = bool(llama_cpp.llama_supports_gpu_offload())
        if device == "cuda" and not gpu:
            raise LlmError(
                "this llama-cpp-python build has no GPU support: rebuild it with "
                "CMAKE_ARGS=-DGGML_CUDA=on (or set llm.device = cpu)"
            )
        n_ctx = min(model.context_length or DEFAULT_CONTEXT, max_context or DEFAULT_CONTEXT)
        self.threads = threads or physical_cores()
        self._loaded: _Loaded | None = _acquire(model, n_ctx, self.threads,
                                                -1 if gpu and device != "cpu" else 0)
        self.path = model.path
        self.model_id = model_id or model.path.stem
        self.device = "cuda" if gpu and device != "cpu" else "cpu"
        self.compute_type = str(model.header.metadata.get("general.file_type", "gguf"))
        self.context_length = n_ctx
        self.default_temperature = temperature
        self.prefix_cache = prefix_cache

    @property
    def load_seconds(self) -> float:
        return self._model().load_s

    @property
    def cache_stats(self) -> dict[str, int]:
        return dict(self._model().stats)

    def _model(self) -> _Loaded:
        return self._open(self._loaded)

    def count_tokens(self, text: str) -> int:
        return len(self._model().tokenize(text, add_bos=False, special=False))

    def _generate(self, request: Request) -> Generation:
        m = self._model()
        ids = m.prompt_ids(request.messages)
        limit = self._fit(len(ids), request.max_tokens)
        grammar = m.grammar(request.json_schema) if request.json_schema is not None else None
        sampling: dict[str, Any] = (
            {"temp": 0.0, "top_k": 1} if request.temperature <= 0
            else {"temp": request.temperature, "top_k": 50, "top_p": 0.95, "min_p": 0.0}
        )
        first: list[float] = []
        t0 = time.perf_counter()
        with m.lock:
            self._open(self._loaded)
            cached = m.prepare(ids, self.prefix_cache)
            steps = m.llm.generate(ids, grammar=grammar, repeat_penalty=1.0, **sampling)

            def tokens() -> Iterator[int]:
                try:
                    for tok in steps:
                        if not first:
                            first.append(time.perf_counter() - t0)
                        if m.is_eog(tok):
                            return
                        yield int(tok)
                finally:
                    steps.close()

            gen = self._stream(tokens(), m.tokens, request, limit=limit, prompt_tokens=len(ids), t0=t0,
                               errors=(RuntimeError, ValueError), describe=str)
            m.stats["calls"] += 1
            m.stats["prompt_tokens"] += len(ids)
            m.stats["evaluated_tokens"] += len(ids) - cached
        return replace(gen, first_token_s=first[0] if first else None, cached_tokens=cached)

    def close(self) -> None:
        loaded, self._loaded = self._loaded, None
        if loaded is not None:
            _release(loaded)


def resolve_gguf(model: str | None) -> tuple[Path, str]:
    """(GGUF file, model id) for ``llm.model``: an embedded id (assembled once from its
    wheels and checksummed), a ``.gguf`` file, or a directory holding one."""
    from summarize.llm.models import resolve_gguf_model

    return resolve_gguf_model(model)


@register("llamacpp")
def create_llamacpp(config: LlmConfig) -> LlamaCppEngine:
    path, model_id = resolve_gguf(config.model)
    return LlamaCppEngine(path, model_id=model_id, **local_options(config))
