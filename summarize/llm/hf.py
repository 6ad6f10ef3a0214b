"""transformers engine: the same chat model in PyTorch (GPU sites; the benchmark baseline).

float32 on CPU, float16 on CUDA. Generation runs ``model.generate`` in a worker thread
and streams token ids back through a queue; text, stop strings and ``max_tokens`` are
handled exactly as in the CTranslate2 engine (:func:`summarize.llm.engine.stream_tokens`),
so both engines give the same greedy text for the same weights.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from summarize.errors import LlmError
from summarize.llm.base import Generation
from summarize.llm.config import LlmConfig
from summarize.llm.ct2 import ChatTokenizer, model_context_length, offline
from summarize.llm.engine import EngineBase, Request, first_line, local_options
from summarize.llm.registry import register

logger = logging.getLogger(__name__)

TORCH_DTYPES = ("float32", "float16", "bfloat16")
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
            "pytorch_model.bin.index.json")


def _check_hf_dir(directory: Path) -> None:
    if not directory.is_dir():
        raise LlmError(
            f"transformers model directory {directory} does not exist: set llm.model to a "
            "local transformers model directory (config.json + *.safetensors + tokenizer)"
        )
    if not (directory / "config.json").is_file() or not any(
        (directory / w).is_file() for w in _WEIGHTS
    ):
        raise LlmError(
            f"transformers model directory {directory} is incomplete (needs config.json and "
            "model.safetensors): save the model with save_pretrained() into it"
        )


def _dtype_kwarg(dtype: Any) -> dict[str, Any]:
    """transformers >= 4.56 calls it ``dtype``; older releases ``torch_dtype``."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


class TransformersEngine(EngineBase):
    """A chat model run by ``AutoModelForCausalLM`` (PyTorch)."""

    name = "transformers"

    def __init__(
        self,
        model_dir: Path | str,
        *,
        model_id: str | None = None,
        device: str = "auto",
        threads: int = 0,
        max_context: int | None = None,
        temperature: float = 0.0,
        dtype: str | None = None,
    ) -> None:
        offline()
        directory = Path(model_dir).expanduser()
        _check_hf_dir(directory)
        self.directory = directory
        self.model_id = model_id or directory.name
        self.default_temperature = temperature
        self.tokenizer = ChatTokenizer(directory)
        self.context_length = model_context_length(directory, max_context)

        import torch
        from transformers import AutoModelForCausalLM

        if device not in ("auto", "cpu", "cuda"):
            raise LlmError(f"unknown device {device!r}: use auto, cpu or cuda (llm.device)")
        has_cuda = torch.cuda.is_available()
        if device == "cuda" and not has_cuda:
            raise LlmError("llm.device cuda was requested but no CUDA GPU is available: use cpu")
        self.device = "cuda" if has_cuda and device != "cpu" else "cpu"
        if dtype not in (None, *TORCH_DTYPES):
            raise LlmError(f"the transformers engine cannot run in {dtype}: use one of "
                           f"{', '.join(TORCH_DTYPES)} (llm.compute_type)")
        torch_dtype = getattr(torch, dtype) if dtype else (
            torch.float16 if self.device == "cuda" else torch.float32)
        self.compute_type = str(torch_dtype).removeprefix("torch.")
        if threads and self.device == "cpu":
            torch.set_num_threads(threads)
        t0 = time.perf_counter()
        try:
            model: Any = AutoModelForCausalLM.from_pretrained(
                str(directory), local_files_only=True, **_dtype_kwarg(torch_dtype)
            )
        except Exception as exc:
            raise LlmError(
                f"cannot load the transformers model in {directory}: {first_line(exc)} "
                "(it must be a complete causal-LM checkpoint)"
            ) from None
        self._model: Any = model.to(self.device).eval()
        self._lock = threading.Lock()
        logger.info("loaded LLM %s with transformers on %s/%s in %.2f s (context %d)",
                    self.model_id, self.device, self.compute_type, time.perf_counter() - t0,
                    self.context_length)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def _token_ids(self, prompt_ids: list[int], limit: int, temperature: float,
                   ) -> Generator[int, None, None]:
        """Run ``generate`` in a thread; yield new ids as they come; stop it on close()."""
        import torch
        from transformers.generation.stopping_criteria import (
            StoppingCriteria,
            StoppingCriteriaList,
        )
        from transformers.generation.streamers import BaseStreamer

        ids: queue.Queue[Any] = queue.Queue()
        cancel = threading.Event()
        done = object()

        class _Streamer(BaseStreamer):
            prompt_seen = False

            def put(self, value: Any) -> None:
                if not self.prompt_seen:  # generate() first sends the prompt
                    self.prompt_seen = True
                    return
                for token_id in value.reshape(-1).tolist():
                    ids.put(int(token_id))

            def end(self) -> None:
                pass

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool,
                                  device=input_ids.device)

        sampling: dict[str, Any] = (
            {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
            if temperature <= 0
            else {"do_sample": True, "temperature": temperature, "top_k": 50, "top_p": 0.95}
        )
        eos = sorted(self.tokenizer.eos_ids)
        pad = self.tokenizer.pad_token_id
        inputs = torch.tensor([prompt_ids], device=self.device)

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(
                        inputs,
                        attention_mask=torch.ones_like(inputs),
                        max_new_tokens=limit,
                        eos_token_id=eos or None,
                        pad_token_id=pad if pad is not None else (eos[0] if eos else None),
                        streamer=_Streamer(),
                        stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                        **sampling,
                    )
            except Exception as exc:  # surfaced in the caller's thread
                ids.put(exc)
            finally:
                ids.put(done)

        worker = threading.Thread(target=run, name="llm-transformers", daemon=True)
        worker.start()
        try:
            while True:
                item = ids.get()
                if item is done:
                    break
                if isinstance(item, Exception):
                    raise LlmError(f"the LLM failed while generating: {first_line(item)}")
                yield item
        finally:
            cancel.set()
            worker.join()

    def _generate(self, request: Request) -> Generation:
        prompt_ids = self.tokenizer.encode(self.tokenizer.render(request.messages))
        limit = self._fit(len(prompt_ids), request.max_tokens)
        with self._lock:
            self._open(self._model)
            t0 = time.perf_counter()
            token_ids = self._token_ids(prompt_ids, limit, request.temperature)
            return self._stream(token_ids, self.tokenizer, request, limit=limit, prompt_tokens=len(prompt_ids),
                                t0=t0, close=token_ids.close)

    def close(self) -> None:
        with self._lock:
            self._model = None


def resolve_hf_dir(model: str | None) -> tuple[Path, str]:
    """(transformers directory, model id) for ``llm.model``: the project's resolver (the
    dequantised checkpoint of an embedded or imported model, or a directory as it is); a
    plain directory if it is unavailable."""
    try:
        from summarize.llm import models
    except ImportError as exc:
        if not model:
            raise LlmError(f"the embedded LLM models are unavailable ({exc}): set llm.model to "
                           "a transformers model directory") from None
        path = Path(model).expanduser()
        _check_hf_dir(path)
        return path, path.name
    directory = Path(models.resolve_hf_source(model))
    _check_hf_dir(directory)
    name = model or str(getattr(models, "DEFAULT_LLM_MODEL", directory.name))
    if "/" in name or "\\" in name or name.startswith((".", "~")):
        name = directory.name
    return directory, name


@register("transformers")
def create_transformers(config: LlmConfig) -> TransformersEngine:
    directory, model_id = resolve_hf_dir(config.model)
    dtype = config.compute_type if config.compute_type in TORCH_DTYPES else None
    return TransformersEngine(directory, model_id=model_id, dtype=dtype, **local_options(config))
