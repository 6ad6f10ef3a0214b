"""A real OpenAI-compatible Whisper server for the tests of ``[asr] engine = "openai"``.

:func:`whisper_server` starts ``python -m faster_whisper_server <model_dir> --host 127.0.0.1
--port <free port>`` (faster-whisper-server 0.0.3, a test extra) as its own process on a
local CTranslate2 Whisper directory, waits until ``GET /health`` answers, and stops it
afterwards. Nothing is downloaded: the server gets the directory the local engine uses
(the embedded Whisper base, assembled from the repository's wheels) and ``HF_HUB_OFFLINE=1``.
The session fixture :func:`asr_server` serves the embedded model once per test run.

Its routes: ``POST /v1/audio/transcriptions`` (form fields ``file``, ``model_name``,
``language``, ``prompt``, ``response_format`` json or verbose_json, ``temperature``; no
word times, no authentication) and ``GET /health``; there is no ``/v1/models``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

MODEL_NAME = "whisper-1"  # faster-whisper-server's single-model mode ignores the name


@dataclass(frozen=True)
class WhisperServer:
    """A running server: its API base (``http://127.0.0.1:<port>/v1``), the model name
    to send, the process and its log file."""

    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def whisper_server(model_dir: Path, log_dir: Path, *, startup_s: float = 120.0) -> Iterator[WhisperServer]:
    """Run faster-whisper-server on ``model_dir`` until the block ends (see the module)."""
    port = free_port()
    log = log_dir / "faster-whisper-server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "faster_whisper_server", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning"]
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log_dir)
    server = WhisperServer(f"http://127.0.0.1:{port}/v1", MODEL_NAME, process, log)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"faster-whisper-server exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"faster-whisper-server did not answer /health within {startup_s:g} s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture(scope="session")
def asr_server(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WhisperServer]:
    """faster-whisper-server on the embedded Whisper base, once per test run."""
    pytest.importorskip("faster_whisper_server", reason="faster-whisper-server is a test extra (pip install -e .[test])")
    from asr.models import resolve_whisper_model

    model_dir, _ = resolve_whisper_model(None, cache_dir=model_cache)
    with whisper_server(model_dir, tmp_path_factory.mktemp("asr-server")) as server:
        yield server
