"""``scribe models import`` and the LLM half of ``scribe models verify``.

    scribe models import SOURCE --name NAME [--quantization int8|int8_float16|float16] [--force]

SOURCE is a ``.gguf`` file (Llama, Mistral, Qwen2, Qwen3, Gemma 3) or a Hugging Face model
directory. Progress bars go to stderr, the resulting directory to stdout. Errors are one
line ``scribe: error: ...`` and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from asr.errors import ScribeError

logger = logging.getLogger(__name__)


def add_models_import_parser(models_sub: Any) -> None:
    """Add ``import`` to the ``scribe models`` sub-parsers."""
    from summarize.llm.model_cache import DEFAULT_QUANTIZATION, QUANTIZATIONS

    p = models_sub.add_parser(
        "import",
        help="convert a GGUF file or a Hugging Face model directory into a local LLM",
        description="Convert a .gguf file (Llama, Mistral, Qwen2, Qwen3, Gemma 3) or a Hugging "
        "Face model directory into a CTranslate2 model in the model cache, once. Use it "
        "afterwards with --llm NAME. Nothing is downloaded.",
    )
    p.add_argument("source", metavar="SOURCE", help=".gguf file or Hugging Face model directory")
    p.add_argument("--name", required=True, help="name to use it by (--llm NAME)")
    p.add_argument(
        "--quantization",
        choices=QUANTIZATIONS,
        default=DEFAULT_QUANTIZATION,
        help=f"CTranslate2 weight type (default {DEFAULT_QUANTIZATION})",
    )
    p.add_argument(
        "--force", action="store_true", help="replace an earlier import of the same name"
    )
    p.add_argument(
        "--no-keep-hf",
        dest="keep_hf",
        action="store_false",
        help="do not keep the dequantised transformers checkpoint of a GGUF "
        "(saves disk; the transformers engine then cannot use the model)",
    )


def progress_factory(stream: TextIO = sys.stderr) -> Callable[[str, int], Callable[[int], None]]:
    """tqdm bars on ``stream``, one per stage, in bytes or steps as the stage counts."""
    from tqdm import tqdm

    from summarize.llm.model_cache import stage_unit

    def factory(label: str, total: int) -> Callable[[int], None]:
        unit = stage_unit(label)
        bar = tqdm(
            total=total,
            desc=label,
            unit=unit,
            unit_scale=unit == "B",
            file=stream,
            leave=False,
            disable=None,
            dynamic_ncols=True,
        )

        def update(n: int) -> None:
            bar.update(n)
            if bar.n >= total:
                bar.close()

        return update

    return factory


def _fail(exc: ScribeError) -> int:
    print(f"scribe: error: {exc}", file=sys.stderr)
    return exc.exit_code


def cmd_models_import(args: argparse.Namespace) -> int:
    from summarize.llm.models import import_model

    try:
        out = import_model(
            Path(args.source),
            args.name,
            quantization=args.quantization,
            progress=progress_factory(sys.stderr),
            force=getattr(args, "force", False),
            keep_hf=getattr(args, "keep_hf", True),
        )
    except ScribeError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        print("scribe: interrupted (nothing was imported)", file=sys.stderr)
        return 130
    print(out)
    print(f"use it with: scribe note ... --llm {args.name}", file=sys.stderr)
    return 0


def cmd_models_llm_verify(args: argparse.Namespace) -> int:
    """Assemble (first time) and verify the embedded LLMs' GGUF files; print their paths."""
    from summarize.llm.models import EMBEDDED_LLMS, resolve_llm_model, verify_embedded_llms

    wanted = getattr(args, "llm", None)  # optional: one model (id, imported name or directory)
    factory = progress_factory(sys.stderr)
    try:
        if isinstance(wanted, str) and wanted not in EMBEDDED_LLMS:
            directory, model_id = resolve_llm_model(wanted, progress_factory=factory)
            print(f"{model_id}: {directory} (ok)")
            return 0
        results = verify_embedded_llms(
            [wanted] if isinstance(wanted, str) else None,
            progress_factory=factory,
            full=bool(getattr(args, "full", False)),
        )
    except ScribeError as exc:
        return _fail(exc)
    for model_id, gguf, others in results:
        print(f"{model_id}: {gguf} (ok)")
        for d in others:
            print(f"{model_id} ({d.name}): {d} (ok)")
    return 0
