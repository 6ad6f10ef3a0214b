"""Import a local model into the cache as a CTranslate2 generator directory.

    GGUF file ──transformers' GGUF loader (dequantises)──▶ transformers checkpoint (bf16)
              ──ctranslate2 TransformersConverter──▶ CTranslate2 directory (int8)
    Hugging Face model directory ──ctranslate2 TransformersConverter──▶ CTranslate2 directory

This module holds the CTranslate2 conversion (:func:`hf_to_ct2`) and the builds that chain
the steps (:func:`build_from_gguf`, :func:`build_from_hf`); the GGUF → transformers step is
:mod:`summarize.llm.hf_checkpoint`, the cache layout and its lock :mod:`summarize.llm.model_cache`,
the checksums :mod:`summarize.llm.manifest`.

Everything is local: ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``; nothing is ever
fetched. The GGUF header is read (with the ``gguf`` package's constants) before any weight
is touched, so an unsupported architecture or a file that is not a GGUF is refused in
milliseconds. Work happens in a temporary directory inside the cache, renamed into place
only when complete (never a partial model), under a lock so two processes do not build the
same model at once. Every output directory gets a ``SHA256SUMS`` manifest, checked cheaply
on later starts through a stamp of file sizes and mtimes.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path

from summarize.errors import LlmError
from summarize.llm.gguf_file import read_gguf_header
from summarize.llm.hf_checkpoint import (
    add_end_tokens,
    check_gguf_architecture,
    check_hf_source,
    gguf_to_hf,
    offline,
    quiet_transformers,
    short_error,
    tidy_tokenizer_config,
)
from summarize.llm.manifest import write_manifest
from summarize.llm.model_cache import (
    DEFAULT_QUANTIZATION,
    QUANTIZATIONS,
    ProgressFactory,
    check_disk,
    clean_stale_temps,
    ct2_dirname,
    hf_dirname,
    progress_stage,
    replace_dir,
    write_info,
)

logger = logging.getLogger(__name__)

HF_CONFIG_COPY = "hf_config.json"

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

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


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
    step = progress_stage(progress_factory, f"converting to CTranslate2 {quantization}", 1)
    with quiet_transformers():
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
                f"CTranslate2 {ctranslate2.__version__} cannot convert {hf_dir}: {short_error(exc)}"
            ) from None
    step(1)
    gc.collect()
    for name in TOKENIZER_FILES:
        if (hf_dir / name).is_file():
            shutil.copyfile(hf_dir / name, out / name)
    tidy_tokenizer_config(out)
    add_end_tokens(out)
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



def _dir_size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())



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
    ``make_ct2``). Call with :func:`~summarize.llm.model_cache.cache_lock` held. Returns (ct2 dir, hf dir)."""
    header = read_gguf_header(gguf)
    model_type = check_gguf_architecture(header)
    size = gguf.stat().st_size
    check_disk(root, size * (4 + (2 if make_ct2 else 0)), f"import {gguf.name}")
    clean_stale_temps(root, name)
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
            write_info(
                ct2_tmp,
                **common,
                quantization=quantization,
                hf_dir=str(hf_final) if hf_final else None,
            )
            write_manifest(ct2_tmp, progress_factory)
        if keep_hf:
            write_info(hf_tmp, **common, quantization="bfloat16", hf_dir=None)
            write_manifest(hf_tmp, progress_factory)
            replace_dir(hf_tmp, hf_final)  # type: ignore[arg-type]
        if make_ct2:
            replace_dir(tmp / "ct2", ct2_final)  # type: ignore[arg-type]
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
    """Transformers checkpoint → ``<root>/<name>-ct2-<q>``. Call with :func:`~summarize.llm.model_cache.cache_lock` held."""
    model_type = check_hf_source(hf_dir)
    check_disk(root, _dir_size(hf_dir) // 2 + (1 << 28), f"import {hf_dir}")
    clean_stale_temps(root, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    try:
        ct2_tmp = tmp / "ct2"
        hf_to_ct2(hf_dir, ct2_tmp, quantization=quantization, progress_factory=progress_factory)
        write_info(
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
        replace_dir(ct2_tmp, final)
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
