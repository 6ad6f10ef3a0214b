from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

import asr.models as models
from asr.errors import ModelError
from asr.models import EmbeddedModel, PartFile, assemble, check_whisper_dir, resolve_whisper_model


def test_embedded_model_assembles_and_verifies(model_cache: Path) -> None:
    root = model_cache / models.WHISPER_BASE.id
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        assert (root / name).is_file()
    assert models.sha256_file(root / "model.bin") == models.WHISPER_BASE.sha256


def test_second_start_does_not_rehash(model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a, **k):
        raise AssertionError("re-hashed an unchanged model")

    monkeypatch.setattr(models, "sha256_file", boom)
    assert resolve_whisper_model(None, cache_dir=model_cache)[0] == model_cache / models.WHISPER_BASE.id


def test_corrupt_cache_is_detected_and_rebuilt(model_cache: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(model_cache, cache)
    target = cache / models.WHISPER_BASE.id / "model.bin"
    with target.open("r+b") as fh:  # flip one byte, same size
        fh.seek(1000)
        b = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([b[0] ^ 0xFF]))
    assemble(models.WHISPER_BASE, cache)
    assert models.sha256_file(target) == models.WHISPER_BASE.sha256


def test_damaged_wheel_data_gives_checksum_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "p1", tmp_path / "p2"
    a.write_bytes(b"abc")
    b.write_bytes(b"def")
    spec = EmbeddedModel("test-model", "model.bin", (PartFile("x", "1", "p1"), PartFile("y", "1", "p2")),
                         sha256=hashlib.sha256(b"abcdeX").hexdigest())
    monkeypatch.setattr(models, "locate_part", lambda p: tmp_path / p.path)
    with pytest.raises(ModelError, match="checksum mismatch.*pip install --force-reinstall x==1 y==1"):
        assemble(spec, tmp_path / "cache")
    assert not (tmp_path / "cache" / "test-model" / "model.bin").exists()
    good = EmbeddedModel("good", "model.bin", spec.parts, sha256=hashlib.sha256(b"abcdef").hexdigest())
    root = assemble(good, tmp_path / "cache")
    assert (root / "model.bin").read_bytes() == b"abcdef"


def test_missing_wheel_names_the_pip_fix() -> None:
    spec = PartFile("no-such-model-part", "1.0.0", "x/data/model.bin.part1")
    with pytest.raises(ModelError, match="pip install no-such-model-part==1.0.0"):
        models.locate_part(spec)


def test_model_dir_missing_a_file(model_cache: Path, tmp_path: Path) -> None:
    d = tmp_path / "nb-whisper"
    shutil.copytree(model_cache / models.WHISPER_BASE.id, d)
    (d / "config.json").unlink()
    with pytest.raises(ModelError, match=r"missing config\.json"):
        check_whisper_dir(d)
    with pytest.raises(ModelError, match="does not exist"):
        check_whisper_dir(tmp_path / "nowhere")


def test_model_dir_manifest_mismatch(model_cache: Path, tmp_path: Path) -> None:
    d = tmp_path / "nb-whisper"
    shutil.copytree(model_cache / models.WHISPER_BASE.id, d)
    (d / "SHA256SUMS").write_text("0" * 64 + "  config.json\n")
    with pytest.raises(ModelError, match="checksum mismatch"):
        resolve_whisper_model(str(d))
