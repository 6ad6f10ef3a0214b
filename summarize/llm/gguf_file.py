"""A GGUF model file checked before llama.cpp maps it: header, chat template, completeness.

llama.cpp reports a damaged file with a generic "failed to load model" on stderr. These
checks read only the header and the tensor table (kilobytes, milliseconds) and turn every
problem a hospital's IT department can meet into one line with the fix:

* not a GGUF at all (a renamed file, an HTML error page, a CTranslate2 ``model.bin``);
* truncated (an interrupted copy): the tensor table says where the last tensor ends, and
  the file is shorter;
* not a chat model (no ``tokenizer.chat_template``: an embedding or base model, a Whisper
  GGUF), which the drafter cannot prompt.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from summarize.errors import LlmError
from summarize.llm.convert import GgufHeader, _HeaderReader, _Truncated, read_gguf_header

DEFAULT_ALIGNMENT = 32
FIX_COPY = "copy the complete file again (compare its sha256 with the source)"


@dataclass(frozen=True, slots=True)
class GgufModel:
    """A GGUF file that passed :func:`check_gguf`."""

    path: Path
    header: GgufHeader
    size: int
    context_length: int | None
    chat_template: str


def _tensor_data_end(path: Path, header: GgufHeader) -> int:
    """Where the last tensor's data ends, from the tensor table after the metadata."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    size = path.stat().st_size
    with path.open("rb", buffering=1 << 20) as fh:
        r = _HeaderReader(fh, size)
        r.read(4 + 4 + 8 + 8)  # magic, version, tensor count, kv count
        for _ in range(len(header.metadata)):
            r.string()
            r.value(r.unpack("<I"))
        end = 0
        for _ in range(header.tensor_count):
            r.string()  # name
            n_dims = r.unpack("<I")
            if n_dims > 8:
                raise _Truncated
            dims = [r.unpack("<Q") for _ in range(n_dims)]
            ttype = r.unpack("<I")
            offset = r.unpack("<Q")
            try:
                block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
            except (ValueError, KeyError):
                raise LlmError(
                    f"{path} uses tensor type {ttype}, which this llama.cpp build does not know: "
                    "use a Q4_K_M, Q5_K_M, Q8_0 or F16 quantisation of the model"
                ) from None
            count = 1
            for d in dims:
                count *= d
            end = max(end, offset + count * type_size // block)
        alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0:
            alignment = DEFAULT_ALIGNMENT
        data_start = -(-fh.tell() // alignment) * alignment
    return data_start + end


def check_gguf(path: Path) -> GgufModel:
    """Raise :class:`LlmError` (one line, with the fix) unless ``path`` is a complete GGUF
    chat model; returns what the engine needs from its header."""
    path = Path(path).expanduser()
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) != 1:
            raise LlmError(
                f"{path} is a directory with {len(ggufs)} .gguf files: give the .gguf file itself "
                "(llm.model = /path/to/model.gguf)"
            )
        path = ggufs[0]
    header = read_gguf_header(path)
    size = path.stat().st_size
    try:
        needed = _tensor_data_end(path, header)
    except _Truncated:
        raise LlmError(f"{path} is truncated (its tensor table is incomplete): {FIX_COPY}") from None
    except (OSError, ValueError, struct.error) as exc:
        raise LlmError(f"{path} is corrupt ({exc}): {FIX_COPY}") from None
    if size < needed:
        raise LlmError(
            f"{path} is truncated ({size / 1e6:.0f} of {needed / 1e6:.0f} MB): {FIX_COPY}"
        )
    meta = header.metadata
    template = meta.get("tokenizer.chat_template")
    if not isinstance(template, str) or not template.strip():
        raise LlmError(
            f"{path} ({header.architecture}) has no chat template: it is not an instruct/chat "
            "model; use the GGUF of the model's instruct version"
        )
    ctx = meta.get(f"{header.architecture}.context_length")
    return GgufModel(
        path=path,
        header=header,
        size=size,
        context_length=ctx if isinstance(ctx, int) and ctx > 0 else None,
        chat_template=template,
    )


def is_gguf(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a GGUF file (by its first bytes, else by its suffix)."""
    p = Path(path).expanduser()
    if p.is_file():
        try:
            with p.open("rb") as fh:
                return fh.read(4) == b"GGUF"
        except OSError:
            return False
    if p.is_dir():
        return len(list(p.glob("*.gguf"))) == 1 and not (p / "model.bin").exists()
    return p.suffix.lower() == ".gguf"
