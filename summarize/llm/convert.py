"""Import a local model into the cache as a CTranslate2 generator directory.

    GGUF file ──transformers' GGUF loader (dequantises)──▶ transformers checkpoint (bf16)
              ──ctranslate2 TransformersConverter──▶ CTranslate2 directory (int8)
    Hugging Face model directory ──ctranslate2 TransformersConverter──▶ CTranslate2 directory

Everything is local: ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``; nothing is ever
fetched. The GGUF header is read (with the ``gguf`` package's constants) before any weight
is touched, so an unsupported architecture or a file that is not a GGUF is refused in
milliseconds. Work happens in a temporary directory inside the cache, renamed into place
only when complete (never a partial model), under a lock so two processes do not build the
same model at once. Every output directory gets a ``SHA256SUMS`` manifest, checked cheaply
on later starts through a stamp of file sizes and mtimes.

Cache layout (``<cache>`` is :func:`asr.models.default_cache_dir`)::

    <cache>/llm/<name>-ct2-<quantization>/   model.bin config.json vocabulary.json
                                             tokenizer.json tokenizer_config.json
                                             [chat_template.jinja] [generation_config.json]
                                             hf_config.json scribe-model.json SHA256SUMS
    <cache>/llm/<name>-hf/                   transformers checkpoint (GGUF imports only):
                                             config.json model.safetensors tokenizer files
                                             scribe-model.json SHA256SUMS
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from asr.models import MANIFEST, Progress, default_cache_dir, sha256_file
from summarize.errors import LlmError

logger = logging.getLogger(__name__)

ProgressFactory = Callable[[str, int], Progress]
"""``factory(label, total)`` returns ``update(n)``, as in :mod:`asr.models`."""

LLM_SUBDIR = "llm"
INFO_FILE = "scribe-model.json"
STAMP = ".scribe-llm-verified.json"
HF_CONFIG_COPY = "hf_config.json"
QUANTIZATIONS = ("int8", "int8_float16", "float16")
DEFAULT_QUANTIZATION = "int8"

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

# Files of a transformers checkpoint that the CTranslate2 directory needs besides its own.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
)
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: Stages reported in steps or tensors rather than bytes (see :func:`stage_unit`).
STEP_STAGES = {
    "reading GGUF": "step",
    "dequantising": "tensor",
    "saving": "step",
    "converting": "step",
}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def stage_unit(label: str) -> str:
    """The unit a progress stage counts in: ``"B"`` for bytes, else steps or tensors."""
    for prefix, unit in STEP_STAGES.items():
        if label.startswith(prefix):
            return unit
    return "B"


def llm_cache_root(cache_dir: Path | None = None) -> Path:
    """``<cache>/llm``: where embedded and imported LLMs live."""
    return (cache_dir or default_cache_dir()) / LLM_SUBDIR


def ct2_dirname(name: str, quantization: str = DEFAULT_QUANTIZATION) -> str:
    return f"{name}-ct2-{quantization}"


def hf_dirname(name: str) -> str:
    return f"{name}-hf"


def offline() -> None:
    """Make sure no Hugging Face code reaches for the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _stage(factory: ProgressFactory | None, label: str, total: int) -> Progress:
    if factory is None:
        return lambda n: None
    return factory(label, max(int(total), 1))


# --------------------------------------------------------------------------- GGUF header


@dataclass(frozen=True, slots=True)
class GgufHeader:
    """What the start of a GGUF file says (no tensor data is read)."""

    path: Path
    version: int
    tensor_count: int
    architecture: str
    name: str | None
    metadata: dict[str, Any] = field(default_factory=dict)  # scalars and strings only


class _Truncated(Exception):
    pass


class _HeaderReader:
    _SCALARS = {
        0: "<B",
        1: "<b",
        2: "<H",
        3: "<h",
        4: "<I",
        5: "<i",
        6: "<f",
        7: "<?",
        10: "<Q",
        11: "<q",
        12: "<d",
    }

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh = fh
        self.size = size

    def read(self, n: int) -> bytes:
        data = self.fh.read(n)
        if len(data) != n:
            raise _Truncated
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > self.size:
            raise _Truncated
        return self.read(n).decode("utf-8", errors="replace")

    def value(self, vtype: int, depth: int = 0) -> Any:
        from gguf.constants import GGUFValueType

        if vtype in self._SCALARS:
            return self.unpack(self._SCALARS[vtype])
        if vtype == GGUFValueType.STRING:
            return self.string()
        if vtype == GGUFValueType.ARRAY and depth < 4:
            etype = self.unpack("<I")
            count = self.unpack("<Q")
            if count > self.size:
                raise _Truncated
            if etype in self._SCALARS:  # skip fixed-width elements
                nbytes = count * struct.calcsize(self._SCALARS[etype])
                if self.fh.tell() + nbytes > self.size:
                    raise _Truncated
                self.fh.seek(nbytes, os.SEEK_CUR)
            else:
                for _ in range(count):
                    self.value(etype, depth + 1)
            return count  # arrays: only their length
        raise ValueError(f"unknown GGUF value type {vtype}")


def read_gguf_header(path: Path) -> GgufHeader:
    """Parse a GGUF file's header and metadata (not the tensors); :class:`LlmError` if
    ``path`` is missing, not a GGUF file, or truncated."""
    from gguf.constants import GGUF_MAGIC

    path = Path(path)
    if not path.exists():
        raise LlmError(
            f"{path} does not exist: give a .gguf model file or a Hugging Face model directory"
        )
    if not path.is_file():
        raise LlmError(f"{path} is not a file")
    try:
        size = path.stat().st_size
        with path.open("rb", buffering=1 << 20) as fh:
            r = _HeaderReader(fh, size)
            try:
                magic = r.unpack("<I")
            except _Truncated:
                magic = -1
            if magic != GGUF_MAGIC:
                raise LlmError(
                    f"{path} is not a GGUF file (it does not start with 'GGUF'): give a .gguf "
                    "model file (e.g. a Q4_K_M quantisation) or a Hugging Face model directory"
                )
            version = r.unpack("<I")
            if version not in (2, 3):
                swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
                what = (
                    "big-endian GGUF files are"
                    if swapped in (2, 3)
                    else f"GGUF version {version} is"
                )
                raise LlmError(f"{path}: {what} not supported: use a little-endian GGUF v2/v3 file")
            tensor_count = r.unpack("<Q")
            kv_count = r.unpack("<Q")
            if kv_count > 1_000_000 or tensor_count > 10_000_000:
                raise _Truncated
            metadata: dict[str, Any] = {}
            for _ in range(kv_count):
                key = r.string()
                vtype = r.unpack("<I")
                metadata[key] = r.value(vtype)
    except _Truncated:
        raise LlmError(
            f"{path} is truncated or corrupt (its GGUF header is incomplete): copy or download "
            "the file again"
        ) from None
    except ValueError as exc:
        raise LlmError(f"{path} is corrupt ({exc}): copy or download the file again") from None
    except OSError as exc:
        raise LlmError(f"cannot read {path}: {exc.strerror or exc}") from None
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise LlmError(
            f"{path} has no general.architecture in its GGUF header: is it a model file?"
        )
    name = metadata.get("general.name")
    return GgufHeader(
        path, version, tensor_count, arch, name if isinstance(name, str) else None, metadata
    )


def check_gguf_architecture(header: GgufHeader) -> str:
    """The transformers model_type for a GGUF, or :class:`LlmError` if it is unsupported."""
    model_type = GGUF_ARCHITECTURES.get(header.architecture)
    if model_type is None:
        raise LlmError(
            f"unsupported architecture {header.architecture} in {header.path}: supported are "
            f"{', '.join(GGUF_ARCHITECTURES)} (llama includes Mistral)"
        )
    return model_type


# --------------------------------------------------------------------------- manifests


def _manifest_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, STAMP) and not p.name.startswith(".")
    )


def write_manifest(directory: Path, progress_factory: ProgressFactory | None = None) -> None:
    """Write ``SHA256SUMS`` (``sha256sum`` format) over every file in ``directory`` and a
    stamp so the next :func:`verify_manifest_cached` need not re-hash."""
    files = _manifest_files(directory)
    update = _stage(
        progress_factory, f"checksumming {directory.name}", sum(p.stat().st_size for p in files)
    )
    lines = []
    for path in files:
        lines.append(f"{sha256_file(path, update)}  {path.relative_to(directory).as_posix()}")
    (directory / MANIFEST).write_text("\n".join(lines) + "\n")
    _write_stamp(directory)


def _stamp_key(directory: Path) -> dict[str, Any]:
    manifest = directory / MANIFEST
    text = manifest.read_text()
    files = {}
    for line in text.splitlines():
        _, _, name = line.strip().partition("  ")
        if name:
            st = (directory / name.lstrip("*")).stat()
            files[name.lstrip("*")] = [st.st_size, st.st_mtime_ns]
    return {"manifest": hashlib.sha256(text.encode()).hexdigest(), "files": files}


def _write_stamp(directory: Path) -> None:
    try:
        (directory / STAMP).write_text(json.dumps(_stamp_key(directory)))
    except OSError as exc:  # only costs a re-hash next time
        logger.warning("cannot write %s: %s", directory / STAMP, exc)


def verify_manifest_cached(
    directory: Path,
    *,
    fix: str,
    progress_factory: ProgressFactory | None = None,
    full: bool = False,
) -> bool:
    """Check ``directory`` against its ``SHA256SUMS``; re-hash only files whose size or mtime
    changed since the last check (all of them with ``full``). Returns False if there is no
    manifest; raises :class:`LlmError` (naming the file and ``fix``) on a mismatch."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return False
    entries: list[tuple[str, str]] = []
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, _, name = line.strip().partition("  ")
            entries.append((digest.lower(), name.lstrip("*")))
    for _, name in entries:
        if not (directory / name).is_file():
            raise LlmError(f"{directory / name} listed in {manifest} is missing: {fix}")
    if not full:
        try:
            if json.loads((directory / STAMP).read_text()) == _stamp_key(directory):
                return True
        except (OSError, ValueError):
            pass
    total = sum((directory / name).stat().st_size for _, name in entries)
    update = _stage(progress_factory, f"verifying {directory.name}", total)
    for digest, name in entries:
        actual = sha256_file(directory / name, update)
        if actual != digest:
            raise LlmError(
                f"checksum mismatch for {directory / name} (sha256 {actual[:12]}…, expected "
                f"{digest[:12]}…): {fix}"
            )
    _write_stamp(directory)
    return True


def read_info(directory: Path) -> dict[str, Any]:
    """The ``scribe-model.json`` written by the importer ({} if absent or unreadable)."""
    try:
        data = json.loads((directory / INFO_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- locking


@contextlib.contextmanager
def cache_lock(root: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<root>/.<name>.lock`` (waits for another process)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fh = (root / f".{name}.lock").open("a+b")
    except OSError as exc:
        raise LlmError(f"cannot write the model cache {root}: {exc.strerror or exc}") from None
    try:
        try:
            import fcntl
        except ImportError:  # Windows
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # Windows only
                    break
                except OSError:
                    time.sleep(0.5)
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]  # Windows only
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning("waiting for another scribe process that is building %s", name)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def _clean_stale_temps(root: Path, name: str) -> None:
    """Remove temp dirs of ``name`` left by a killed process (call with the lock held)."""
    for stale in root.glob(f".tmp-{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _replace_dir(src: Path, dst: Path) -> None:
    """Move the finished ``src`` to ``dst``, replacing an old ``dst``."""
    old = None
    if dst.exists():
        old = dst.with_name(f".tmp-old-{dst.name}-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_disk(root: Path, need: int, what: str) -> None:
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return
    if free < need:
        raise LlmError(
            f"not enough disk space in {root} to {what}: about {need / 1e9:.1f} GB needed, "
            f"{free / 1e9:.1f} GB free (set SCRIBE_MODEL_CACHE to a larger disk)"
        )


# --------------------------------------------------------------------------- Hugging Face dirs


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
        raise LlmError(f"{cfg_path} is not valid JSON ({_first_line(exc)})") from None
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


def _dir_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
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
    step = _stage(progress_factory, "reading GGUF metadata", 2)
    with _quiet_transformers():
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
                f"cannot read the model settings or tokenizer of {where}: {_first_line(exc)}"
            ) from None
        try:
            with torch.device("meta"):
                model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
            update = _stage(progress_factory, "dequantising tensors", header.tensor_count)
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
                f"cannot dequantise {where}: {_first_line(exc)} (corrupt file or an unsupported "
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
        step = _stage(progress_factory, "saving transformers checkpoint", 1)
        try:
            model.save_pretrained(str(out))
            tokenizer.save_pretrained(str(out))
        except OSError as exc:
            raise LlmError(f"cannot write {out}: {exc.strerror or exc}") from None
        step(1)
    del model
    gc.collect()
    _tidy_tokenizer_config(out)
    _add_end_tokens(out)
    return str(config.model_type)


def _tidy_tokenizer_config(directory: Path) -> None:
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


def _add_end_tokens(directory: Path) -> None:
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


def hf_to_ct2(
    hf_dir: Path,
    out: Path,
    *,
    quantization: str = DEFAULT_QUANTIZATION,
    progress_factory: ProgressFactory | None = None,
) -> None:
    """Convert the transformers checkpoint ``hf_dir`` into the new CTranslate2 directory ``out``
    and copy the tokenizer, chat template and generation settings next to it."""
    if quantization not in QUANTIZATIONS:
        raise LlmError(
            f"unknown quantization {quantization}: choose one of {', '.join(QUANTIZATIONS)}"
        )
    offline()
    try:
        import ctranslate2
        from ctranslate2.converters import TransformersConverter
    except ImportError as exc:
        raise LlmError(
            f"model import needs ctranslate2 ({exc}): reinstall ambient-scribe"
        ) from None
    step = _stage(progress_factory, f"converting to CTranslate2 {quantization}", 1)
    with _quiet_transformers():
        try:
            converter = TransformersConverter(
                str(hf_dir), load_as_float16=quantization in ("float16", "int8_float16")
            )
            converter.convert(str(out), quantization=quantization, force=True)
        except MemoryError:
            raise LlmError(
                f"out of memory converting {hf_dir}: close other programs or use a smaller model"
            ) from None
        except Exception as exc:  # the converter raises ValueError, NotImplementedError, OSError…
            shutil.rmtree(out, ignore_errors=True)
            raise LlmError(
                f"CTranslate2 {ctranslate2.__version__} cannot convert {hf_dir}: {_first_line(exc)}"
            ) from None
    step(1)
    gc.collect()
    for name in TOKENIZER_FILES:
        if (hf_dir / name).is_file():
            shutil.copyfile(hf_dir / name, out / name)
    _tidy_tokenizer_config(out)
    _add_end_tokens(out)
    hf_cfg = json.loads((hf_dir / "config.json").read_text())
    (out / HF_CONFIG_COPY).write_text(json.dumps(hf_cfg, indent=2) + "\n")
    # transformers' tokenizer loader reads config.json next to tokenizer.json; without
    # these two keys it takes the directory for an old Mistral one and warns falsely.
    ct2_cfg_path = out / "config.json"
    ct2_cfg = json.loads(ct2_cfg_path.read_text())
    for key in ("model_type", "transformers_version"):
        if key in hf_cfg and key not in ct2_cfg:
            ct2_cfg[key] = hf_cfg[key]
    for key in ("unk_token", "bos_token"):  # some loaders write null, which CTranslate2 rejects
        if key in ct2_cfg and ct2_cfg[key] is None:
            ct2_cfg[key] = ""
    ct2_cfg_path.write_text(json.dumps(ct2_cfg, indent=2) + "\n")


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("ctranslate2", "transformers", "torch", "gguf"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _write_info(directory: Path, **info: Any) -> None:
    info = {
        **info,
        "converted_with": _versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    (directory / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


# --------------------------------------------------------------------------- building


def build_from_gguf(
    gguf: Path,
    name: str,
    root: Path,
    *,
    quantization: str = DEFAULT_QUANTIZATION,
    make_ct2: bool = True,
    keep_hf: bool = True,
    source: str | None = None,
    source_sha256: str | None = None,
    progress_factory: ProgressFactory | None = None,
) -> tuple[Path | None, Path | None]:
    """GGUF → ``<root>/<name>-hf`` (if ``keep_hf``) and ``<root>/<name>-ct2-<q>`` (if
    ``make_ct2``). Call with :func:`cache_lock` held. Returns (ct2 dir, hf dir)."""
    header = read_gguf_header(gguf)
    model_type = check_gguf_architecture(header)
    size = gguf.stat().st_size
    _check_disk(root, size * (4 + (2 if make_ct2 else 0)), f"import {gguf.name}")
    _clean_stale_temps(root, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        hf_tmp = tmp / "hf"
        t0 = time.monotonic()
        gguf_to_hf(gguf, hf_tmp, progress_factory=progress_factory)
        common = {
            "name": name,
            "architecture": model_type,
            "source": source or str(gguf),
            "source_kind": "gguf",
            "source_sha256": source_sha256,
            "gguf_architecture": header.architecture,
            "gguf_name": header.name,
        }
        logger.info("dequantised %s in %.0f s", gguf.name, time.monotonic() - t0)
        ct2_final = root / ct2_dirname(name, quantization) if make_ct2 else None
        hf_final = root / hf_dirname(name) if keep_hf else None
        if make_ct2:
            ct2_tmp = tmp / "ct2"
            t0 = time.monotonic()
            hf_to_ct2(hf_tmp, ct2_tmp, quantization=quantization, progress_factory=progress_factory)
            logger.info(
                "converted %s to CTranslate2 %s in %.0f s",
                name,
                quantization,
                time.monotonic() - t0,
            )
            _write_info(
                ct2_tmp,
                **common,
                quantization=quantization,
                hf_dir=str(hf_final) if hf_final else None,
            )
            write_manifest(ct2_tmp, progress_factory)
        if keep_hf:
            _write_info(hf_tmp, **common, quantization="bfloat16", hf_dir=None)
            write_manifest(hf_tmp, progress_factory)
            _replace_dir(hf_tmp, hf_final)  # type: ignore[arg-type]
        if make_ct2:
            _replace_dir(tmp / "ct2", ct2_final)  # type: ignore[arg-type]
        return ct2_final, hf_final
    except OSError as exc:
        raise LlmError(f"cannot write the model cache {root}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_from_hf(
    hf_dir: Path,
    name: str,
    root: Path,
    *,
    quantization: str = DEFAULT_QUANTIZATION,
    source_sha256: str | None = None,
    progress_factory: ProgressFactory | None = None,
) -> Path:
    """Transformers checkpoint → ``<root>/<name>-ct2-<q>``. Call with :func:`cache_lock` held."""
    model_type = check_hf_source(hf_dir)
    _check_disk(root, _dir_size(hf_dir) // 2 + (1 << 28), f"import {hf_dir}")
    _clean_stale_temps(root, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        ct2_tmp = tmp / "ct2"
        hf_to_ct2(hf_dir, ct2_tmp, quantization=quantization, progress_factory=progress_factory)
        _write_info(
            ct2_tmp,
            name=name,
            architecture=model_type,
            source=str(hf_dir),
            source_kind="hf",
            source_sha256=source_sha256,
            quantization=quantization,
            hf_dir=str(hf_dir),
        )
        write_manifest(ct2_tmp, progress_factory)
        final = root / ct2_dirname(name, quantization)
        _replace_dir(ct2_tmp, final)
        return final
    except OSError as exc:
        raise LlmError(f"cannot write the model cache {root}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_name(name: str) -> None:
    if not _NAME_RE.match(name or ""):
        raise LlmError(
            f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
            "(e.g. --name normistral-7b-q4)"
        )
