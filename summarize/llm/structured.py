"""Structured model calls: one pydantic model is both the decoding constraint and the check.

    structured_call(engine, messages, Medications) -> Medications | None

The schema is the model's JSON schema. An engine that can constrain decoding to it
(``constrained_json``: llama.cpp's grammar) gets it and its output always parses; every
engine's output is validated with the same model. An answer that fails validation is
retried once with the error told to the model, then the call returns ``None`` so the
caller falls back (extractive text); :class:`StructuredStats` counts each outcome.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from summarize.llm.base import ChatMessage, LlmEngine

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.I)


@dataclass
class StructuredStats:
    """Outcome counts of structured calls (thread-safe)."""

    calls: int = 0
    valid_first: int = 0
    valid_retry: int = 0
    fallbacks: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, outcome: str) -> None:
        with self._lock:
            self.calls += 1
            setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "valid_first": self.valid_first,
                "valid_retry": self.valid_retry, "fallbacks": self.fallbacks}


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema a pydantic model stands for (what constrains and what validates)."""
    return model.model_json_schema()


def parse(model: type[T], text: str) -> T:
    """Validate a model answer; tolerates a Markdown code fence around the JSON."""
    return model.model_validate_json(_FENCE.sub("", text.strip()))


def structured_call(
    engine: LlmEngine,
    messages: list[ChatMessage],
    model: type[T],
    *,
    max_tokens: int = 256,
    stats: StructuredStats | None = None,
    constrain: bool = True,
) -> T | None:
    """One structured call: constrained where the engine can, validated always, retried
    once, ``None`` (fall back) when still invalid. ``constrain=False`` measures the rate
    without the constraint."""
    schema = schema_of(model)
    use_schema = schema if constrain and getattr(engine, "constrained_json", False) else None
    msgs = list(messages)
    for attempt in (0, 1):
        gen = engine.generate(msgs, max_tokens=max_tokens, temperature=0.0, json_schema=use_schema)
        try:
            result = parse(model, gen.text)
        except ValidationError as exc:
            first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {}
            problem = f"{'.'.join(str(x) for x in first.get('loc', ()))}: {first.get('msg', 'invalid')}"
            logger.info("structured call: invalid answer (%s), attempt %d", problem, attempt + 1)
            msgs = [*messages, ChatMessage("assistant", gen.text),
                    ChatMessage("user", "Svaret var ikke gyldig JSON etter skjemaet "
                                f"({problem}). Svar bare med JSON etter dette skjemaet: "
                                f"{json.dumps(schema, ensure_ascii=False)}")]
            continue
        if stats is not None:
            stats.add("valid_first" if attempt == 0 else "valid_retry")
        return result
    if stats is not None:
        stats.add("fallbacks")
    return None
