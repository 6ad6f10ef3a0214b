"""CTranslate2 engine (the default): a decoder-only chat model converted to CTranslate2.

CPU int8 by default, CUDA int8_float16/float16 when a GPU is there (the same choice as
the Whisper loader, :func:`asr.loader.choose_compute`). The tokenizer and its chat
template come from the model directory (``tokenizer.json`` + ``tokenizer_config.json``
or ``chat_template.jinja``, as ``ct2-transformers-converter --copy_files`` leaves them).

This module also holds what both engines of a Hugging Face tokenizer directory share
(:class:`ChatTokenizer`, :func:`model_context_length`); the transformers engine uses them
too. What every engine shares is :mod:`summarize.llm.engine`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from summarize.errors import LlmError
from summarize.llm.base import ChatMessage, Generation
from summarize.llm.config import LlmConfig
from summarize.llm.engine import (
    EngineBase,
    IncrementalDetokenizer,
    Request,
    first_line,
    generation_log,
    local_options,
    render_chat,
)
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


# --------------------------------------------------------------------------- the tokenizer directory


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
                f"cannot load the tokenizer in {directory}: {first_line(exc)} "
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
        return render_chat(
            lambda chat: str(self._tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)),
            messages,
            lambda exc: f"the chat template in {self.directory} failed: {first_line(exc)}",
        )

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


def _sampling(temperature: float) -> dict[str, Any]:
    """CTranslate2's sampling arguments: greedy at temperature 0."""
    if temperature <= 0:
        return {"sampling_topk": 1}
    return {"sampling_topk": 50, "sampling_topp": 0.95, "sampling_temperature": temperature}


def _common_prefix(seqs: Sequence[list[str]]) -> list[str]:
    """The longest prefix all of ``seqs`` share, one token short of the shortest."""
    first, n = seqs[0], 0
    limit = min(len(x) for x in seqs) - 1
    while n < limit and all(x[n] == first[n] for x in seqs):
        n += 1
    return first[:n]


class CTranslate2Engine(EngineBase):
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
                f"cannot load the LLM in {directory}: {first_line(exc)} (it must be a "
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

    def _generate(self, request: Request) -> Generation:
        prompt_ids = self.tokenizer.encode(self.tokenizer.render(request.messages))
        limit = self._fit(len(prompt_ids), request.max_tokens)
        with self._lock:
            generator = self._open(self._generator)
            sampling = _sampling(request.temperature)
            t0 = time.perf_counter()
            static, prompt = self._split_static(self.tokenizer.tokens(prompt_ids))
            steps: Generator[Any, None, None] = generator.generate_tokens(
                prompt,
                static_prompt=static or None,
                max_length=limit,
                end_token=self.tokenizer.eos_tokens or None,
                **sampling,
            )
            # closing steps stops CTranslate2 at once (stop string, callback error)
            return self._stream((step.token_id for step in steps), self.tokenizer, request, limit=limit,
                                prompt_tokens=len(prompt_ids), t0=t0, errors=(RuntimeError,), close=steps.close)

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
        temperature = self._temperature(temperature)
        ids = [self.tokenizer.encode(self.tokenizer.render(m)) for m in prompts]
        limits = [self._fit(len(i), m) for i, m in zip(ids, max_tokens, strict=True)]
        with self._lock:
            generator = self._open(self._generator)
            t0 = time.perf_counter()
            tokens = [self.tokenizer.tokens(i) for i in ids]
            static, _ = self._split_static(tokens[0])
            if not all(len(t) > len(static) and t[: len(static)] == static for t in tokens):
                static = _common_prefix(tokens)
                static = static if len(static) >= MIN_STATIC_TOKENS else []
            try:
                results = generator.generate_batch(
                    [t[len(static):] for t in tokens],
                    static_prompt=static or None,
                    max_length=max(limits),
                    end_token=self.tokenizer.eos_tokens or None,
                    include_prompt_in_result=False,
                    **_sampling(temperature),
                )
            except RuntimeError as exc:
                raise LlmError(f"the LLM failed while generating: {first_line(exc)}") from None
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
    return CTranslate2Engine(directory, model_id=model_id, compute_type=config.compute_type, **local_options(config))
