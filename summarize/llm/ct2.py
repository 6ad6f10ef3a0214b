"""CTranslate2 engine (the default): a decoder-only chat model converted to CTranslate2.

CPU int8 by default, CUDA int8_float16/float16 when a GPU is there (the same choice as
the Whisper loader, :func:`asr.loader.choose_compute`). The tokenizer and its chat
template come from the model directory (``tokenizer.json`` + ``tokenizer_config.json``
or ``chat_template.jinja``, as ``ct2-transformers-converter --copy_files`` leaves them).

This module also holds the helpers both local engines share (:class:`ChatTokenizer`,
:class:`IncrementalDetokenizer`, :class:`StopFilter`, :func:`stream_tokens`); the
HTTP engine uses :class:`StopFilter` too.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from summarize.errors import LlmError
from summarize.llm.base import ChatMessage, Generation, TokenCallback
from summarize.llm.config import LlmConfig
from summarize.llm.registry import register

if TYPE_CHECKING:
    import ctranslate2

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT = 4096
"""Context length assumed when the model directory does not say (logged as a warning)."""

_CONTEXT_KEYS = ("max_position_embeddings", "max_seq_len", "n_positions", "max_sequence_length",
                 "seq_length", "n_ctx")
_CONTEXT_FILES = ("config.json", "hf_config.json", "source_config.json")

CONVERT_HINT = "scribe models import SOURCE.gguf|HF_DIR --name NAME"
"""How a model becomes a CTranslate2 directory (ct2-transformers-converter --quantization
int8 --copy_files tokenizer.json tokenizer_config.json chat_template.jinja does it by hand)."""


def offline() -> None:
    """Never let transformers reach for a model hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- shared helpers


class ChatTokenizer:
    """The tokenizer of a local model directory and its chat template."""

    def __init__(self, directory: Path) -> None:
        offline()
        self.directory = directory
        if not any((directory / f).is_file() for f in ("tokenizer.json", "tokenizer.model",
                                                        "vocab.json")):
            raise LlmError(
                f"the LLM model directory {directory} has no tokenizer (tokenizer.json): copy "
                f"it from the source model or convert again with {CONVERT_HINT}"
            )
        try:
            from transformers import AutoTokenizer

            self._tok: Any = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        except Exception as exc:  # transformers raises many kinds
            raise LlmError(
                f"cannot load the tokenizer in {directory}: {_first_line(exc)} "
                "(is tokenizer.json complete?)"
            ) from None
        if not getattr(self._tok, "chat_template", None):
            raise LlmError(
                f"the tokenizer in {directory} has no chat template: copy tokenizer_config.json "
                "(or chat_template.jinja) of the instruct model into that directory"
            )
        self.eos_ids: set[int] = set()
        for candidate in (self._tok.eos_token_id, self._tok.convert_tokens_to_ids("<|im_end|>"),
                          self._tok.convert_tokens_to_ids("<|endoftext|>"),
                          self._tok.convert_tokens_to_ids("<|eot_id|>"),
                          self._tok.convert_tokens_to_ids("<end_of_turn>")):
            if isinstance(candidate, int) and candidate != self._tok.unk_token_id:
                self.eos_ids.add(candidate)
        gen_cfg = _read_json(directory / "generation_config.json")
        eos = gen_cfg.get("eos_token_id")
        for candidate in eos if isinstance(eos, list) else [eos]:
            if isinstance(candidate, int):
                self.eos_ids.add(candidate)
        self.eos_tokens = [self._tok.convert_ids_to_tokens(i) for i in sorted(self.eos_ids)]

    def render(self, messages: list[ChatMessage]) -> str:
        """The prompt text: the chat template with the assistant turn opened."""
        chat = [{"role": m.role, "content": m.content} for m in messages]
        try:
            return str(self._tok.apply_chat_template(chat, tokenize=False,
                                                     add_generation_prompt=True))
        except Exception as exc:
            # Some templates (Gemma) refuse a system turn: fold it into the first user turn.
            if chat and chat[0]["role"] == "system" and len(chat) > 1:
                system, rest = chat[0]["content"], [dict(m) for m in chat[1:]]
                if rest[0]["role"] == "user":
                    rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
                    try:
                        return str(self._tok.apply_chat_template(
                            rest, tokenize=False, add_generation_prompt=True))
                    except Exception:
                        pass
            raise LlmError(
                f"the chat template in {self.directory} failed: {_first_line(exc)}"
            ) from None

    @property
    def pad_token_id(self) -> int | None:
        pad = self._tok.pad_token_id
        return pad if isinstance(pad, int) else None

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids, skip_special_tokens=True,
                                    clean_up_tokenization_spaces=False))

    def tokens(self, ids: list[int]) -> list[str]:
        return list(self._tok.convert_ids_to_tokens(ids))

    def detokenizer(self) -> IncrementalDetokenizer:
        return IncrementalDetokenizer(self.decode)


class IncrementalDetokenizer:
    """Token ids in, text increments out, never splitting a multi-byte character.

    Decodes a small window of recent ids twice (before/after the new id) and emits the
    difference, holding back while the text ends in U+FFFD (an incomplete UTF-8 byte
    sequence); the window keeps SentencePiece's leading-space handling right.
    """

    def __init__(self, decode: Callable[[list[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # start of the decode window
        self._read = 0  # ids up to here have been emitted

    def add(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix:self._read])
        new_text = self._decode(self._ids[self._prefix:])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            piece = new_text[len(prefix_text):]
            self._prefix, self._read = self._read, len(self._ids)
            return piece
        return ""

    def flush(self) -> str:
        """Whatever is held back (an incomplete character at the very end)."""
        if self._read >= len(self._ids):
            return ""
        prefix_text = self._decode(self._ids[self._prefix:self._read])
        new_text = self._decode(self._ids[self._prefix:])
        self._prefix = self._read = len(self._ids)
        return new_text[len(prefix_text):]


class StopFilter:
    """Cuts streamed text at the first stop string, never emitting any part of it.

    Text that could be the start of a stop string is held back until it is known not to
    be one, so ``"".join(emitted pieces) == final text`` always holds.
    """

    def __init__(self, stop: list[str] | None) -> None:
        self.stop = [s for s in (stop or []) if s]
        self._longest = max((len(s) for s in self.stop), default=0)
        self.text = ""
        self._emitted = 0
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Add generated text; returns what can be emitted now ("" if nothing)."""
        if self.stopped or not piece:
            return ""
        start = max(0, len(self.text) - self._longest + 1)
        self.text += piece
        if self.stop:
            hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
            if hits:
                self.text = self.text[:min(hits)]
                self.stopped = True
                return self._emit(len(self.text))
            return self._emit(len(self.text) - self._held())
        return self._emit(len(self.text))

    def finish(self) -> str:
        """End of generation: release what was held back."""
        return self._emit(len(self.text))

    def _held(self) -> int:
        """Length of the longest tail of the text that begins a stop string."""
        for n in range(min(self._longest - 1, len(self.text)), 0, -1):
            tail = self.text[-n:]
            if any(s.startswith(tail) for s in self.stop):
                return n
        return 0

    def _emit(self, end: int) -> str:
        if end <= self._emitted:
            return ""
        piece = self.text[self._emitted:end]
        self._emitted = end
        return piece


def stream_tokens(
    token_ids: Iterable[int],
    tokenizer: ChatTokenizer,
    *,
    max_tokens: int,
    stop: list[str] | None,
    on_token: TokenCallback | None,
) -> tuple[str, int, str]:
    """Consume generated ids: detokenize, cut at stop strings, stream to ``on_token``.

    Stops consuming (closing the iterator, which stops the engine) at an end-of-turn
    token, a stop string or ``max_tokens``. Returns (text, generated tokens, finish_reason).
    """
    detok = tokenizer.detokenizer()
    stopper = StopFilter(stop)
    n = 0
    finish = "stop"

    def emit(piece: str) -> None:
        if piece and on_token is not None:
            on_token(piece)

    iterator = iter(token_ids)
    try:
        for token_id in iterator:
            if token_id in tokenizer.eos_ids:
                break
            n += 1
            emit(stopper.feed(detok.add(token_id)))
            if stopper.stopped:
                break
            if n >= max_tokens:
                finish = "length"
                break
        if not stopper.stopped:
            emit(stopper.feed(detok.flush()))
            emit(stopper.finish())
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if stopper.stopped:
        finish = "stop"
    return stopper.text, n, finish


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def model_context_length(directory: Path, cap: int | None = None) -> int:
    """The model's context window from its config (max_position_embeddings), capped."""
    found: int | None = None
    for name in _CONTEXT_FILES:
        cfg = _read_json(directory / name)
        for section in (cfg, cfg.get("text_config") or {}):
            for key in _CONTEXT_KEYS:
                value = section.get(key) if isinstance(section, dict) else None
                if isinstance(value, int) and value > 0:
                    found = value
                    break
            if found:
                break
        if found:
            break
    if found is None:
        tok_max = _read_json(directory / "tokenizer_config.json").get("model_max_length")
        if isinstance(tok_max, int | float) and 0 < tok_max < 10_000_000:
            found = int(tok_max)
    if found is None:
        found = DEFAULT_CONTEXT
        if not cap:
            logger.warning(
                "%s does not state its context length (max_position_embeddings): assuming %d",
                directory, DEFAULT_CONTEXT,
            )
    return min(found, cap) if cap else found


def fit_max_tokens(prompt_tokens: int, max_tokens: int, context_length: int, model: str) -> int:
    """Clamp ``max_tokens`` to what the context leaves after the prompt."""
    room = context_length - prompt_tokens
    if room < 1:
        raise LlmError(
            f"the prompt is {prompt_tokens} tokens but {model} sees at most {context_length}: "
            "shorten the transcript or raise llm.max_context (if the model allows it)"
        )
    if max_tokens > room:
        logger.info("output limited to %d tokens by the context (%d)", room, context_length)
    return max(1, min(max_tokens, room))


def generation_log(engine: str, gen: Generation) -> None:
    logger.info(
        "%s: %d prompt + %d generated tokens in %.2f s (%.1f tok/s, %s)", engine,
        gen.prompt_tokens, gen.tokens, gen.seconds, gen.tokens_per_second, gen.finish_reason,
    )


# --------------------------------------------------------------------------- the engine


def _check_model_dir(directory: Path) -> None:
    if not directory.exists():
        raise LlmError(
            f"LLM model directory {directory} does not exist: set llm.model to a CTranslate2 "
            f"model directory or an embedded model id (convert with {CONVERT_HINT})"
        )
    if not directory.is_dir():
        raise LlmError(f"LLM model path {directory} is not a directory: set llm.model to the "
                       "CTranslate2 model directory")
    missing = [f for f in ("model.bin", "config.json") if not (directory / f).is_file()]
    if missing:
        raise LlmError(
            f"LLM model directory {directory} is incomplete (missing {', '.join(missing)}): "
            f"it is not a CTranslate2 model; convert it with {CONVERT_HINT}"
        )


MIN_STATIC_TOKENS = 64


def _common_prefix(seqs: Sequence[list[str]]) -> list[str]:
    """The longest prefix all of ``seqs`` share, one token short of the shortest."""
    first, n = seqs[0], 0
    limit = min(len(x) for x in seqs) - 1
    while n < limit and all(x[n] == first[n] for x in seqs):
        n += 1
    return first[:n]


class CTranslate2Engine:
    """A chat model run by ``ctranslate2.Generator``."""

    name = "ctranslate2"

    def __init__(
        self,
        model_dir: Path | str,
        *,
        model_id: str | None = None,
        device: str = "auto",
        compute_type: str | None = None,
        threads: int = 0,
        max_context: int | None = None,
        temperature: float = 0.0,
    ) -> None:
        directory = Path(model_dir).expanduser()
        _check_model_dir(directory)
        self.directory = directory
        self.model_id = model_id or directory.name
        self.default_temperature = temperature
        self.tokenizer = ChatTokenizer(directory)

        import ctranslate2

        from asr.errors import ConfigError
        from asr.loader import choose_compute

        try:
            choice = choose_compute(device, compute_type)
        except ConfigError as exc:
            raise LlmError(str(exc).replace("--device", "llm.device")) from None
        self.device, self.compute_type = choice.device, choice.compute_type
        # drafting batch: on a 2-core CPU a batch of 4 line prompts (600-token shared
        # prefix) measured slower than one by one; a GPU batches for free
        self.preferred_batch = 4 if self.device == "cuda" else 1
        t0 = time.perf_counter()
        try:
            self._generator: ctranslate2.Generator | None = ctranslate2.Generator(
                str(directory),
                device=self.device,
                compute_type=self.compute_type,
                intra_threads=threads or (os.cpu_count() or 1),
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise LlmError(
                f"cannot load the LLM in {directory}: {_first_line(exc)} (it must be a "
                f"decoder-only chat model converted with {CONVERT_HINT})"
            ) from None
        self._lock = threading.Lock()
        self._last_prompt: list[str] = []
        self._static: list[str] = []
        self.context_length = model_context_length(directory, max_context)
        logger.info("loaded LLM %s on %s/%s in %.2f s (context %d)", self.model_id, self.device,
                    self.compute_type, time.perf_counter() - t0, self.context_length)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def generate(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float | None = None,
        stop: list[str] | None = None,
        on_token: TokenCallback | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> Generation:
        temperature = self.default_temperature if temperature is None else temperature
        prompt_ids = self.tokenizer.encode(self.tokenizer.render(messages))
        limit = fit_max_tokens(len(prompt_ids), max_tokens, self.context_length, self.model_id)
        with self._lock:
            generator = self._generator
            if generator is None:
                raise LlmError("the LLM engine was closed")
            sampling: dict[str, Any] = (
                {"sampling_topk": 1} if temperature <= 0
                else {"sampling_topk": 50, "sampling_topp": 0.95,
                      "sampling_temperature": temperature}
            )
            t0 = time.perf_counter()
            static, prompt = self._split_static(self.tokenizer.tokens(prompt_ids))
            steps: Generator[Any, None, None] = generator.generate_tokens(
                prompt,
                static_prompt=static or None,
                max_length=limit,
                end_token=self.tokenizer.eos_tokens or None,
                **sampling,
            )
            try:
                text, n, finish = stream_tokens(
                    (step.token_id for step in steps), self.tokenizer,
                    max_tokens=limit, stop=stop, on_token=on_token,
                )
            except RuntimeError as exc:
                raise LlmError(f"the LLM failed while generating: {_first_line(exc)}") from None
            finally:
                steps.close()  # stops CTranslate2 at once (stop string, callback error)
            gen = Generation(text=text, tokens=n, seconds=time.perf_counter() - t0,
                             prompt_tokens=len(prompt_ids), finish_reason=finish)
        generation_log(self.name, gen)
        return gen

    def generate_batch(
        self,
        prompts: Sequence[list[ChatMessage]],
        *,
        max_tokens: Sequence[int],
        temperature: float | None = None,
    ) -> list[Generation]:
        """Several independent prompts in one batched call (no streaming, no stop strings).

        On a GPU a batch costs about what one prompt costs. On a 2-core CPU, 8 line
        prompts with a 600-token shared prefix took 36 s in batches of 4 against 27 s one
        by one (short prompts: batches of 4 were 2× faster), so the engine prefers 1 there
        (``preferred_batch``). The prompts' shared prefix is the cached static prompt.
        """
        if not prompts:
            return []
        if len(prompts) == 1:
            return [self.generate(prompts[0], max_tokens=max_tokens[0], temperature=temperature)]
        temperature = self.default_temperature if temperature is None else temperature
        ids = [self.tokenizer.encode(self.tokenizer.render(m)) for m in prompts]
        limits = [fit_max_tokens(len(i), m, self.context_length, self.model_id) for i, m in zip(ids, max_tokens,
                                                                                                  strict=True)]
        with self._lock:
            generator = self._generator
            if generator is None:
                raise LlmError("the LLM engine was closed")
            t0 = time.perf_counter()
            tokens = [self.tokenizer.tokens(i) for i in ids]
            static, _ = self._split_static(tokens[0])
            if not all(len(t) > len(static) and t[: len(static)] == static for t in tokens):
                static = _common_prefix(tokens)
                static = static if len(static) >= MIN_STATIC_TOKENS else []
            sampling: dict[str, Any] = (
                {"sampling_topk": 1} if temperature <= 0
                else {"sampling_topk": 50, "sampling_topp": 0.95, "sampling_temperature": temperature}
            )
            try:
                results = generator.generate_batch(
                    [t[len(static):] for t in tokens],
                    static_prompt=static or None,
                    max_length=max(limits),
                    end_token=self.tokenizer.eos_tokens or None,
                    include_prompt_in_result=False,
                    **sampling,
                )
            except RuntimeError as exc:
                raise LlmError(f"the LLM failed while generating: {_first_line(exc)}") from None
            seconds = time.perf_counter() - t0
        out = []
        for result, limit, prompt_ids in zip(results, limits, ids, strict=True):
            seq = [t for t in result.sequences_ids[0] if t not in self.tokenizer.eos_ids]
            finish = "length" if len(seq) >= limit else "stop"
            seq = seq[:limit]
            gen = Generation(text=self.tokenizer.decode(seq), tokens=len(seq), seconds=seconds,
                             prompt_tokens=len(prompt_ids), finish_reason=finish)
            generation_log(self.name, gen)
            out.append(gen)
        return out

    def _split_static(self, tokens: list[str]) -> tuple[list[str], list[str]]:
        """(cached prefix, rest) of a prompt: automatic prefix caching.

        Drafting calls share a long prefix (system rules, the template's sections and
        instructions) and differ only in the transcript part. The longest prefix two
        consecutive prompts share (at least ``MIN_STATIC_TOKENS``) becomes CTranslate2's
        static prompt, whose model state is computed once and reused, so a later call
        only pays for its own transcript tokens. Same output, less time.
        """
        static = self._static
        if not (static and len(tokens) > len(static) and tokens[: len(static)] == static):
            last, n = self._last_prompt, 0
            limit = min(len(last), len(tokens) - 1)
            while n < limit and last[n] == tokens[n]:
                n += 1
            static = tokens[:n] if n >= MIN_STATIC_TOKENS else []
            if static:
                self._static = static
        self._last_prompt = tokens
        return static, tokens[len(static):]

    def close(self) -> None:
        with self._lock:
            if self._generator is not None:
                try:
                    self._generator.unload_model()
                except Exception:  # already gone
                    pass
                self._generator = None


def resolve_ct2_dir(model: str | None) -> tuple[Path, str]:
    """(CTranslate2 directory, model id) for ``llm.model``: the project's resolver (embedded
    ids, imported names, checked directories); a plain directory if it is unavailable."""
    try:
        from summarize.llm.models import resolve_llm_model
    except ImportError as exc:
        if not model:
            raise LlmError(f"the embedded LLM models are unavailable ({exc}): set llm.model to "
                           "a CTranslate2 model directory") from None
        path = Path(model).expanduser()
        _check_model_dir(path)
        return path, path.name
    return resolve_llm_model(model)


@register("ctranslate2")
def create_ctranslate2(config: LlmConfig) -> CTranslate2Engine:
    directory, model_id = resolve_ct2_dir(config.model)
    return CTranslate2Engine(
        directory,
        model_id=model_id,
        device=config.device,
        compute_type=config.compute_type,
        threads=config.threads,
        max_context=config.max_context,
        temperature=config.temperature,
    )
