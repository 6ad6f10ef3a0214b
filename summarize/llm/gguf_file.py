"""A GGUF model file: its header read (no tensor data), and checked before llama.cpp maps it.

:func:`read_gguf_header` parses the header and metadata with the ``gguf`` package's
constants, so an unsupported architecture or a file that is not a GGUF is refused in
milliseconds, before any weight is touched (the importer, :mod:`summarize.llm.convert`,
reads it too).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from summarize.errors import LlmError

DEFAULT_ALIGNMENT = 32
FIX_COPY = "copy the complete file again (compare its sha256 with the source)"


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
