"""Engine registry: a name in :attr:`LlmConfig.engine` -> a factory that builds the engine.

Engines register themselves on import with :func:`register`; the built-in ones are
imported lazily by :func:`create_engine` (so choosing ``openai`` never imports torch)::

    @register("ctranslate2")
    def _create(config: LlmConfig) -> LlmEngine: ...

    engine = create_engine(LlmConfig(engine="ctranslate2"))
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable

from summarize.errors import LlmError
from summarize.llm.base import LlmEngine
from summarize.llm.config import LlmConfig

logger = logging.getLogger(__name__)

EngineFactory = Callable[[LlmConfig], LlmEngine]

BUILTIN_ENGINES: dict[str, str] = {
    "llamacpp": "summarize.llm.llamacpp",
    "ctranslate2": "summarize.llm.ct2",
    "transformers": "summarize.llm.hf",
    "openai": "summarize.llm.openai_http",
}
"""Built-in engine name -> the module whose import registers it."""

_factories: dict[str, EngineFactory] = {}
_lock = threading.Lock()


def register(name: str) -> Callable[[EngineFactory], EngineFactory]:
    """Decorator: register ``factory(config) -> LlmEngine`` under ``name``.

    Registering a name again replaces the factory (last import wins), so tests and
    plugins can override a built-in engine.
    """
    key = name.strip().lower()
    if not key:
        raise ValueError("engine name must not be empty")

    def decorator(factory: EngineFactory) -> EngineFactory:
        with _lock:
            if key in _factories and _factories[key] is not factory:
                logger.debug("LLM engine %r re-registered", key)
            _factories[key] = factory
        return factory

    return decorator


def unregister(name: str) -> None:
    """Remove an engine (tests)."""
    with _lock:
        _factories.pop(name.strip().lower(), None)


def available_engines() -> list[str]:
    """Names :func:`create_engine` accepts: the built-in ones and any registered since."""
    with _lock:
        return sorted({"auto"} | set(BUILTIN_ENGINES) | set(_factories))


def _factory(name: str) -> EngineFactory:
    with _lock:
        factory = _factories.get(name)
    if factory is None and name in BUILTIN_ENGINES:
        try:
            importlib.import_module(BUILTIN_ENGINES[name])
        except ImportError as exc:
            raise LlmError(
                f"LLM engine {name!r} cannot be loaded: {exc} (reinstall ambient-scribe "
                "with its dependencies)"
            ) from None
        with _lock:
            factory = _factories.get(name)
    if factory is None:
        raise LlmError(
            f"unknown LLM engine {name!r}: use one of {', '.join(available_engines())} "
            "(setting llm.engine)"
        )
    return factory


def auto_engine(model: str | None) -> str:
    """The engine ``llm.engine = "auto"`` picks for ``llm.model``: llama.cpp for the
    embedded models and any GGUF; CTranslate2 for a CTranslate2 directory or a model made
    by ``scribe models import``; transformers for a Hugging Face checkpoint."""
    from pathlib import Path

    from summarize.llm.gguf_file import is_gguf

    if not model:
        return "llamacpp"
    try:
        from summarize.llm.models import EMBEDDED_LLMS
    except ImportError:
        EMBEDDED_LLMS = {}
    if model in EMBEDDED_LLMS or is_gguf(model):
        return "llamacpp"
    path = Path(model).expanduser()
    if path.is_dir() and not (path / "model.bin").is_file() and (path / "config.json").is_file():
        return "transformers"
    return "ctranslate2"


def create_engine(config: LlmConfig | None = None) -> LlmEngine:
    """Build the engine ``config.engine`` names (default ``auto``: llama.cpp on the
    embedded model, see :func:`auto_engine`).

    Raises :class:`LlmError` (one line, with the fix) for an unknown name or an engine
    that cannot start.
    """
    config = config or LlmConfig()
    name = config.engine.strip().lower()
    if name == "auto":
        name = auto_engine(config.model)
        logger.debug("llm.engine auto: %s", name)
    return _factory(name)(config)
