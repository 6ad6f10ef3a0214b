"""What the LLM engines share behind the :class:`~summarize.llm.base.LlmEngine` protocol.

* **Message rendering**: :func:`chat_dicts` (the role/content dicts chat templates and the
  OpenAI API take) and :func:`render_chat` (a chat template, with a system turn folded into
  the first user turn where the template refuses one, as Gemma's does).
* **Stop handling and the stream loop**: :class:`IncrementalDetokenizer`,
  :class:`StopFilter` (the HTTP engine's too) and :func:`stream_tokens`.
* **The call itself**: :class:`EngineBase`, whose ``generate`` applies the default
  temperature, runs the engine's ``_generate`` and logs the call; ``_stream`` turns the
  token ids of a local engine (CTranslate2, transformers, llama.cpp) into a timed
  :class:`~summarize.llm.base.Generation`; ``_open`` refuses a closed engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Set
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, TypeVar

from asr.errors import first_line
from summarize.errors import LlmError
from summarize.llm.base import ChatMessage, Generation, TokenCallback
from summarize.llm.config import LlmConfig

logger = logging.getLogger(__name__)

T = TypeVar("T")
CLOSED = "the LLM engine was closed"


# --------------------------------------------------------------------------- messages


def chat_dicts(messages: list[ChatMessage]) -> list[dict[str, str]]:
    """The messages as the ``{"role", "content"}`` dicts chat templates and the OpenAI API take."""
    return [{"role": m.role, "content": m.content} for m in messages]


def render_chat(
    render: Callable[[list[dict[str, str]]], T],
    messages: list[ChatMessage],
    failed: Callable[[Exception], str],
) -> T:
    """``render(chat)``; if the template refuses the chat, again with the system turn folded
    into the first user turn (Gemma's template refuses a system turn). :class:`LlmError`
    with ``failed(the first error)`` if that fails too."""
    chat = chat_dicts(messages)
    try:
        return render(chat)
    except Exception as exc:
        if chat and chat[0]["role"] == "system" and len(chat) > 1 and chat[1]["role"] == "user":
            rest = [dict(m) for m in chat[1:]]
            rest[0]["content"] = f"{chat[0]['content']}\n\n{rest[0]['content']}"
            try:
                return render(rest)
            except Exception:
                pass
        raise LlmError(failed(exc)) from None


# --------------------------------------------------------------------------- streaming


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


class TokenText(Protocol):
    """What :func:`stream_tokens` needs of a tokenizer: its end-of-turn ids and a detokenizer."""

    @property
    def eos_ids(self) -> Set[int]: ...

    def detokenizer(self) -> IncrementalDetokenizer: ...


def stream_tokens(
    token_ids: Iterable[int],
    tokenizer: TokenText,
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


# --------------------------------------------------------------------------- the base


@dataclass(frozen=True, slots=True)
class Request:
    """One ``generate`` call, the engine's default temperature applied."""

    messages: list[ChatMessage]
    max_tokens: int
    temperature: float
    stop: list[str] | None
    on_token: TokenCallback | None
    json_schema: dict[str, Any] | None


class EngineBase:
    """The half of :class:`~summarize.llm.base.LlmEngine` every engine shares; an engine
    sets ``name``, ``model_id``, ``context_length`` and ``default_temperature`` and
    implements ``_generate``, ``count_tokens`` and ``close``."""

    name: str
    model_id: str
    context_length: int
    default_temperature: float

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
        request = Request(messages, max_tokens, self._temperature(temperature), stop, on_token, json_schema)
        gen = self._generate(request)
        generation_log(self.name, gen)
        return gen

    def _generate(self, request: Request) -> Generation:
        raise NotImplementedError

    def _temperature(self, temperature: float | None) -> float:
        return self.default_temperature if temperature is None else temperature

    def _fit(self, prompt_tokens: int, max_tokens: int) -> int:
        """``max_tokens`` clamped to what the context leaves (:func:`fit_max_tokens`)."""
        return fit_max_tokens(prompt_tokens, max_tokens, self.context_length, self.model_id)

    @staticmethod
    def _open(model: T | None) -> T:
        """The loaded model, or :class:`LlmError` once the engine is closed."""
        if model is None:
            raise LlmError(CLOSED)
        return model

    @staticmethod
    def _stream(
        token_ids: Iterator[int],
        tokenizer: TokenText,
        request: Request,
        *,
        limit: int,
        prompt_tokens: int,
        t0: float,
        errors: tuple[type[Exception], ...] = (),
        describe: Callable[[BaseException], str] = first_line,
        close: Callable[[], None] | None = None,
    ) -> Generation:
        """Stream generated ids (:func:`stream_tokens`) into a :class:`Generation` timed from
        ``t0``. An error of ``errors`` becomes one :class:`LlmError` line; ``close`` (stopping
        the engine at once) runs however the stream ends."""
        try:
            text, n, finish = stream_tokens(token_ids, tokenizer, max_tokens=limit, stop=request.stop,
                                            on_token=request.on_token)
        except errors as exc:
            raise LlmError(f"the LLM failed while generating: {describe(exc)}") from None
        finally:
            if close is not None:
                close()
        return Generation(text=text, tokens=n, seconds=time.perf_counter() - t0,
                          prompt_tokens=prompt_tokens, finish_reason=finish)


class LocalOptions(TypedDict):
    """The settings every local engine (llama.cpp, CTranslate2, transformers) takes."""

    device: str
    threads: int
    max_context: int | None
    temperature: float


def local_options(config: LlmConfig) -> LocalOptions:
    """The :class:`LocalOptions` of ``config``, for an engine factory."""
    return LocalOptions(device=config.device, threads=config.threads, max_context=config.max_context,
                        temperature=config.temperature)
