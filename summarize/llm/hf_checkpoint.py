"""Transformers checkpoints for the converter: a GGUF dequantised into one, or a Hugging Face
model directory checked as one.

    GGUF file ──transformers' GGUF loader (dequantises)──▶ transformers checkpoint (bf16)

The GGUF's architecture is checked from its header before any weight is touched; the
tokenizer settings are tidied and every end-of-turn token is made an ``eos_token_id`` (also
for the CTranslate2 directory, :func:`summarize.llm.convert.hf_to_ct2`). Everything is
local: ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from asr.models import Progress
from summarize.errors import LlmError
from summarize.llm.gguf_file import GgufHeader, read_gguf_header
from summarize.llm.model_cache import ProgressFactory, progress_stage

logger = logging.getLogger(__name__)

#: GGUF ``general.architecture`` -> transformers ``model_type``: what both transformers'
#: GGUF loader and CTranslate2's converter handle, and the tests convert.
#: Mistral GGUFs say "llama" (llama.cpp runs them as Llama, and so do we).
GGUF_ARCHITECTURES: dict[str, str] = {
    "llama": "llama",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gemma3": "gemma3_text",
}
#: transformers ``model_type`` of a Hugging Face directory -> what it is.
HF_MODEL_TYPES: dict[str, str] = {
    "llama": "Llama",
    "mistral": "Mistral",
    "qwen2": "Qwen2",
    "qwen3": "Qwen3",
    "gemma3_text": "Gemma 3 (text-only, Gemma3ForCausalLM)",
}
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def offline() -> None:
    """Make sure no Hugging Face code reaches for the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def short_error(exc: BaseException) -> str:
    """The first line of an error message (at most 300 characters), else its type."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def check_gguf_architecture(header: GgufHeader) -> str:
    """The transformers model_type for a GGUF, or :class:`LlmError` if it is unsupported."""
    model_type = GGUF_ARCHITECTURES.get(header.architecture)
    if model_type is None:
        raise LlmError(
            f"unsupported architecture {header.architecture} in {header.path}: supported are "
            f"{', '.join(GGUF_ARCHITECTURES)} (llama includes Mistral)"
        )
    return model_type


def check_hf_source(directory: Path) -> str:
    """Check that ``directory`` is a convertible transformers checkpoint; return its model_type."""
    if not directory.exists():
        raise LlmError(
            f"{directory} does not exist: give a .gguf file or a Hugging Face model directory"
        )
    if not directory.is_dir():
        raise LlmError(f"{directory} is neither a .gguf file nor a directory")
    if (directory / "model.bin").is_file() and not (directory / "model.safetensors").exists():
        raise LlmError(
            f"{directory} is already a CTranslate2 model: use it directly (--llm {directory}), "
            "there is nothing to import"
        )
    cfg_path = directory / "config.json"
    if not cfg_path.is_file():
        raise LlmError(
            f"{directory} is not a Hugging Face model directory (no config.json): give the "
            "directory holding config.json, *.safetensors and the tokenizer, or a .gguf file"
        )
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise LlmError(f"{cfg_path} is not valid JSON ({short_error(exc)})") from None
    model_type = cfg.get("model_type") if isinstance(cfg, dict) else None
    if model_type not in HF_MODEL_TYPES:
        hint = (
            " (a multimodal Gemma 3; only the text-only Gemma3ForCausalLM is supported)"
            if model_type == "gemma3"
            else ""
        )
        raise LlmError(
            f"unsupported architecture {model_type or 'unknown'} in {directory}{hint}: supported "
            f"are {', '.join(HF_MODEL_TYPES)}"
        )
    quant = cfg.get("quantization_config")
    if isinstance(quant, dict):
        raise LlmError(
            f"{directory} is pre-quantised ({quant.get('quant_method', 'unknown')}): import the "
            "original float16/bfloat16 checkpoint, or a GGUF file, instead"
        )
    if not any((directory / f).is_file() for f in WEIGHT_FILES) and not any(
        directory.glob("*.safetensors")
    ):
        raise LlmError(
            f"{directory} has no weights (model.safetensors or pytorch_model.bin): copy the "
            "complete model directory"
        )
    if not any(
        (directory / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "vocab.json")
    ):
        raise LlmError(
            f"{directory} has no tokenizer (tokenizer.json): copy the complete model directory"
        )
    return str(model_type)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' own progress bars (we report the stages ourselves)."""
    from transformers.utils import logging as tlog

    was = tlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            tlog.enable_progress_bar()


@contextlib.contextmanager
def _count_gguf_tensors(update: Progress) -> Iterator[None]:
    """Report each tensor transformers' GGUF loader dequantises (it loops with ``tqdm``)."""
    import transformers.modeling_gguf_pytorch_utils as gm

    original = getattr(gm, "tqdm", None)
    if original is None:
        yield
        return

    def counting(iterable: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for item in iterable:
            yield item
            update(1)

    gm.tqdm = counting
    try:
        yield
    finally:
        gm.tqdm = original


def gguf_to_hf(gguf: Path, out: Path, *, progress_factory: ProgressFactory | None = None) -> str:
    """Dequantise ``gguf`` into a transformers checkpoint (bfloat16 safetensors + tokenizer)
    in the new directory ``out``. Returns the model_type."""
    header = read_gguf_header(gguf)
    check_gguf_architecture(header)
    offline()
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    except ImportError as exc:
        raise LlmError(
            f"model import needs torch, transformers and gguf ({exc}): reinstall ambient-scribe"
        ) from None

    where = f"{gguf.name} ({header.architecture})"
    step = progress_stage(progress_factory, "reading GGUF metadata", 2)
    with quiet_transformers():
        try:
            config = AutoConfig.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, local_files_only=True
            )
            if header.architecture == "llama" and config.model_type != "llama":
                # transformers makes a MistralConfig of a GGUF named "mistral", then cannot map
                # its tensors; the weights are Llama's, as llama.cpp treats them.
                from transformers import LlamaConfig

                drop = ("model_type", "architectures", "sliding_window", "transformers_version")
                config = LlamaConfig.from_dict(
                    {k: v for k, v in config.to_dict().items() if k not in drop}
                )
            step(1)
            tokenizer = AutoTokenizer.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, local_files_only=True
            )
            step(1)
        except Exception as exc:  # transformers raises many kinds on odd files
            raise LlmError(
                f"cannot read the model settings or tokenizer of {where}: {short_error(exc)}"
            ) from None
        try:
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
            update = progress_stage(progress_factory, "dequantising tensors", header.tensor_count)
            with _count_gguf_tensors(update):
                tensors = load_gguf_checkpoint(
                    str(gguf), return_tensors=True, model_to_load=model, torch_dtype=torch.bfloat16
                )["tensors"]
        except MemoryError:
            raise LlmError(
                f"out of memory dequantising {where}: close other programs or use a smaller model"
            ) from None
        except Exception as exc:
            raise LlmError(
                f"cannot dequantise {where}: {short_error(exc)} (corrupt file or an unsupported "
                "quantisation type; Q4_K_M, Q5_K_M, Q6_K and Q8_0 work)"
            ) from None
        unexpected = model.load_state_dict(tensors, strict=False, assign=True).unexpected_keys
        del tensors
        if unexpected:
            logger.warning("%s: ignored GGUF tensors %s", where, ", ".join(unexpected[:5]))
        model.tie_weights()
        missing = [n for n, p in model.named_parameters() if p.is_meta]
        if missing:
            raise LlmError(
                f"{where} lacks weights for {', '.join(missing[:3])}"
                f"{' …' if len(missing) > 3 else ''}: the file is incomplete or not a causal LM"
            )
        step = progress_stage(progress_factory, "saving transformers checkpoint", 1)
        try:
            model.save_pretrained(str(out))
            tokenizer.save_pretrained(str(out))
        except OSError as exc:
            raise LlmError(f"cannot write {out}: {exc.strerror or exc}") from None
        step(1)
    del model
    gc.collect()
    tidy_tokenizer_config(out)
    add_end_tokens(out)
    return str(config.model_type)


def tidy_tokenizer_config(directory: Path) -> None:
    """Drop loading flags transformers copies into tokenizer_config.json."""
    path = directory / "tokenizer_config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for key in ("local_files_only", "is_local", "gguf_file", "_commit_hash"):
        cfg.pop(key, None)
    path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


# End-of-turn markers of the chat formats of the supported families. A GGUF names only one
# eos token; generation must also stop at the others the template can produce.
END_TOKENS = (
    "<|im_end|>",
    "<|endoftext|>",
    "<end_of_turn>",
    "<eos>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "</s>",
)


def add_end_tokens(directory: Path) -> None:
    """Put every end-of-turn token of the vocabulary into generation_config's eos_token_id."""
    path = directory / "generation_config.json"
    try:
        gen = json.loads(path.read_text()) if path.is_file() else {}
        vocab = json.loads((directory / "tokenizer.json").read_text())
    except (OSError, ValueError):
        return
    ids: list[int] = []
    eos = gen.get("eos_token_id")
    for value in eos if isinstance(eos, list) else [eos]:
        if isinstance(value, int):
            ids.append(value)
    added = {
        t.get("content"): t.get("id") for t in vocab.get("added_tokens", []) if isinstance(t, dict)
    }
    for token in END_TOKENS:
        tid = added.get(token)
        if isinstance(tid, int) and tid not in ids:
            ids.append(tid)
    if ids:
        gen["eos_token_id"] = ids if len(ids) > 1 else ids[0]
        path.write_text(json.dumps(gen, indent=2) + "\n")
