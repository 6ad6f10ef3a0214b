"""The one protocol every LLM engine implements, and its small value types."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Generation:
    """The result of one generate call. ``tokens`` counts generated tokens."""

    text: str
    tokens: int
    seconds: float
    prompt_tokens: int = 0
    finish_reason: str = "stop"  # "stop" | "length"
    first_token_s: float | None = None  # time to the first generated token (where measured)
    cached_tokens: int = 0  # prompt tokens reused from a cached prefix (llama.cpp)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


TokenCallback = Callable[[str], None]
"""Called with each new piece of text as it is generated (streaming)."""


class LlmEngine(Protocol):
    """A chat model. Implementations: llama.cpp (default), CTranslate2, transformers, OpenAI-compatible HTTP."""

    name: str  # engine kind, e.g. "ctranslate2"
    model_id: str  # what the note's metadata names
    context_length: int  # tokens the model can see (prompt + output)

    def generate(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        on_token: TokenCallback | None = None,
        json_schema: dict[str, Any] | None = None,
    ) -> Generation:
        """``json_schema``: constrain the output to JSON of that schema where the engine can
        (``constrained_json`` true: llama.cpp's grammar); other engines ignore it and the
        caller validates (:mod:`summarize.llm.structured`)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def close(self) -> None: ...


def generate_many(
    engine: LlmEngine,
    prompts: Sequence[list[ChatMessage]],
    *,
    max_tokens: Sequence[int],
    temperature: float = 0.0,
) -> list[Generation]:
    """Independent prompts, batched where the engine can (``generate_batch``: CTranslate2
    batches, the HTTP engine sends concurrent requests), else one after another."""
    batch = getattr(engine, "generate_batch", None)
    if batch is not None and len(prompts) > 1:
        return list(batch(prompts, max_tokens=max_tokens, temperature=temperature))
    return [engine.generate(p, max_tokens=m, temperature=temperature) for p, m in zip(prompts, max_tokens, strict=True)]
