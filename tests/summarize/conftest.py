"""Fixtures of the note side: a tiny chat model made on the spot, a local LLM server.

Nothing is downloaded: the tokenizer is trained on a few Norwegian sentences with the
``tokenizers`` library (byte-level BPE like Qwen's, so multi-byte characters split across
tokens), the model is a two-layer Qwen2 trained for a few seconds on the same sentences,
and CTranslate2 converts it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

CORPUS = [
    "Pasienten har hatt vondt i brystet i to dager.",
    "Blodtrykket er 140 over 90, og pulsen er regelmessig.",
    "Hun bruker Albyl-E og Metoprolol daglig.",
    "Legen anbefaler blodprøver og EKG før neste kontroll.",
    "Han røyker ikke, men drikker kaffe hver morgen.",
    "Smertene øker ved anstrengelse og går over i hvile.",
    "Vi avtaler ny time om to uker på legekontoret.",
    "Kneet er hovent og ømt medialt etter fallet på isen.",
]

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

TINY_CONTEXT = 512
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                   "special_tokens_map.json", "generation_config.json")


def _build_tiny_hf(out: Path) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 3, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", chat_template=CHATML)
    fast.save_pretrained(out)

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=TINY_CONTEXT,
        tie_word_embeddings=False, eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.pad_token_id, bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    _train(model, fast)
    model.save_pretrained(out)
    return out


def _train(model: Any, tokenizer: Any, steps: int = 150) -> None:
    """A few seconds of training on chat-formatted corpus sentences (one thread).

    A random model's next-token scores are nearly flat, so int8 rounding flips its greedy
    choice from the first token; trained, its choices are clear, it writes words and it
    ends its turn with <|im_end|> like a real chat model.
    """
    import torch

    n = len(CORPUS)
    texts = [
        tokenizer.apply_chat_template([
            {"role": "system", "content": "Du er en klinisk assistent."},
            {"role": "user", "content": CORPUS[(i + 3) % n]},
            {"role": "assistant", "content": sentence},
        ], tokenize=False)
        for i, sentence in enumerate(CORPUS)
    ]
    encoded = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    width = max(map(len, encoded))
    ids = torch.full((n, width), tokenizer.pad_token_id)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, e in enumerate(encoded):
        ids[i, :len(e)] = torch.tensor(e)
        mask[i, :len(e)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        model.train()
        for _ in range(steps):
            model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
    finally:
        torch.set_num_threads(threads)


def _convert(hf_dir: Path, out: Path, quantization: str) -> Path:
    import ctranslate2

    copy = [f for f in TOKENIZER_FILES if (hf_dir / f).is_file()]
    ctranslate2.converters.TransformersConverter(str(hf_dir), copy_files=copy).convert(
        str(out), quantization=quantization, force=True)
    # The context length lives in the source's config.json, which CTranslate2 replaces:
    # keep it in the converted config (as the model importer does).
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    cfg["max_position_embeddings"] = json.loads(
        (hf_dir / "config.json").read_text(encoding="utf-8"))["max_position_embeddings"]
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Qwen2 (hidden 64, vocab 400, ChatML template) trained for ~2 s on
    Norwegian sentences (it answers with one of them, then ``<|im_end|>``)."""
    return _build_tiny_hf(tmp_path_factory.mktemp("tiny-qwen2-hf"))


@pytest.fixture(scope="session")
def tiny_ct2_model(tiny_hf_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model converted to CTranslate2 int8 (tokenizer files copied along)."""
    return _convert(tiny_hf_model, tmp_path_factory.mktemp("tiny-ct2") / "int8", "int8")


@pytest.fixture(scope="session")
def tiny_ct2_f32_model(tiny_hf_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model converted to CTranslate2 float32 (for exact comparisons)."""
    return _convert(tiny_hf_model, tmp_path_factory.mktemp("tiny-ct2") / "f32", "float32")


@pytest.fixture()
def copy_model(tmp_path: Path) -> Callable[[Path], Path]:
    """A writable copy of a model directory (to break it)."""

    def copy(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst

    return copy


# ---------------------------------------------------------------------- the test server


class LlmServer:
    """A running ``python -m tests.llm_server`` process."""

    def __init__(self, mode: str, *args: str) -> None:
        self.mode = mode
        self.tls = "--tls-cert" in args
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.llm_server", "--port", "0", "--mode", mode, *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            encoding="utf-8",
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"test LLM server did not start: {line!r} {err[-500:]}")
        self.port = int(line)
        self.origin = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self.base_url = f"{self.origin}/v1"

    def last_request(self) -> dict:
        import httpx

        return httpx.get(f"{self.origin}/_last", timeout=5, verify=False).json()["last"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="session")
def llm_server() -> Iterator[Callable[..., LlmServer]]:
    """``llm_server(mode, *extra_args)``: a server process, one per distinct arguments,
    stopped when the session ends."""
    running: dict[tuple[str, ...], LlmServer] = {}

    def start(mode: str = "ok", *args: str) -> LlmServer:
        key = (mode, *args)
        if key not in running:
            running[key] = LlmServer(mode, *args)
        return running[key]

    yield start
    for server in running.values():
        server.stop()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA): (cert.pem, key.pem)."""
    pytest.importorskip("cryptography")
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm.sykehus.test")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    out = tmp_path_factory.mktemp("tls")
    cert_path, key_path = out / "cert.pem", out / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture()
def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
