"""A real FHIR server for the EPJ tests: ``sekmet-fhir`` in its own process, and a small
fault-injecting proxy in front of it.

The server listens on 127.0.0.1 and a free port only, keeps its SQLite file in the test's
temporary folder and is stopped afterwards. The proxy forwards to it and can, once per
queued fault, answer with a status of its own, never answer, or forward the request and
then drop the connection before the answer (the server has stored the note; the client
does not know).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FhirServer:
    base_url: str
    token_url: str
    process: subprocess.Popen[bytes]
    workdir: Path

    def search(self, identifier: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.base_url}/DocumentReference", params={"identifier": identifier},
                      headers=headers or {}, timeout=10)
        r.raise_for_status()
        return [e["resource"] for e in r.json().get("entry") or []]

    def count(self, headers: dict[str, str] | None = None) -> int:
        r = httpx.get(f"{self.base_url}/DocumentReference", params={"_summary": "count"},
                      headers=headers or {}, timeout=10)
        r.raise_for_status()
        return int(r.json()["total"])


def _sekmet() -> list[str]:
    exe = Path(sys.executable).with_name("sekmet")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sekmet.cli"]


@contextmanager
def sekmet_server(workdir: Path, *, clients: list[dict[str, str]] | None = None):
    """Start ``sekmet serve`` on 127.0.0.1:free port; ``clients`` turns on SMART auth with
    client-credentials clients ``{client_id, client_secret, scopes}``."""
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    config: dict[str, Any] = {
        "base_url": base, "host": "127.0.0.1", "port": port, "data_dir": str(workdir / "data"),
        "db_path": str(workdir / "data" / "sekmet.db"), "simulator": {"enabled": False}, "log_inbound": False,
    }
    if clients:
        config["server_auth"] = {"types": ["smart"], "smart_clients": clients}
    (workdir / "settings.yaml").write_text(yaml.safe_dump(config))
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*_sekmet(), "serve", "-c", str(workdir / "settings.yaml"), "--host", "127.0.0.1",
                             "--port", str(port)], cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"sekmet exited: {(workdir / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("sekmet did not start within 60 s")
            time.sleep(0.2)
        yield FhirServer(base, f"http://127.0.0.1:{port}/auth/token", proc, workdir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class Fault:
    """What the proxy does to one request: ``status`` (answer this), ``hang`` (never
    answer), ``drop_after_forward`` (let the server store it, then drop the connection),
    ``drip`` (let the server store it, then send its answer one byte a second)."""

    action: str
    status: int = 0
    body: dict[str, Any] | str | None = None      # a str is sent as text/html
    method: str = "POST"


@dataclass
class FaultProxy:
    upstream: str                 # e.g. http://127.0.0.1:PORT (no path)
    faults: deque[Fault] = field(default_factory=deque)
    seen: list[tuple[str, str]] = field(default_factory=list)   # (method, path) of every request
    port: int = 0
    _server: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def posts(self) -> int:
        return sum(1 for m, _ in self.seen if m == "POST")

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.seen.append((self.command, self.path))
                fault = None
                if proxy.faults and proxy.faults[0].method == self.command:
                    fault = proxy.faults.popleft()
                if fault and fault.action == "hang":
                    time.sleep(5)
                    self.close_connection = True
                    return
                if fault and fault.action == "status":
                    raw = isinstance(fault.body, str)
                    data = fault.body.encode() if isinstance(fault.body, str) else json.dumps(fault.body or {}).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "text/html" if raw else "application/fhir+json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                r = httpx.request(self.command, proxy.upstream + self.path, content=body, headers=headers,
                                  timeout=30)
                if fault and fault.action == "drop_after_forward":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault and fault.action == "drip":
                    self.close_connection = True
                    head = f"HTTP/1.1 {r.status_code} OK\r\nContent-Type: application/fhir+json\r\n" \
                           f"Content-Length: {len(r.content)}\r\n\r\n".encode()
                    with contextlib.suppress(OSError):
                        for i in range(len(head) + len(r.content)):
                            self.wfile.write((head + r.content)[i:i + 1])
                            self.wfile.flush()
                            time.sleep(1.0)
                    return
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
