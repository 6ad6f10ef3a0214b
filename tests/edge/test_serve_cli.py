"""``scribe edge serve`` as IT runs it: a subprocess with the real embedded models, TLS from the
test CA, pairing through ``scribe edge pair --json`` over the control socket, a paired phone's
API call, then Ctrl-C: a clean exit, the control socket removed, nothing of the pairing logged."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.fhir_server import free_port

ROOT = Path(__file__).resolve().parents[2]
SMALL_LLM = "qwen2.5-coder-0.5b-instruct-q4km"


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_serve_pair_and_stop(tmp_path: Path, tls: SimpleNamespace) -> None:
    port = free_port()
    sock = tmp_path / "run" / "edge.sock"
    config = tmp_path / "config.toml"
    config.write_text(f'[app]\nsink = "fhir"\n\n[fhir]\nbase_url = "https://epj.invalid/fhir"\n'
                      f'author = "PractitionerRole/placeholder"\n\n[llm]\nmodel = "{SMALL_LLM}"\n\n'
                      f'[audit]\npath = "{tmp_path / "audit.jsonl"}"\n', encoding="utf-8")
    env = {**os.environ, "SCRIBE_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "app.cli", "edge", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--cert", tls.cert, "--key", tls.key, "--socket", str(sock), "--public-url", f"https://localhost:{port}"]
    server = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    err_lines: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = server.stderr.readline() if server.stderr else ""
            if not line and server.poll() is not None:
                break
            err_lines.append(line)
            if "serving https://localhost" in line:
                break
        assert any("serving https://localhost" in x for x in err_lines), "".join(err_lines)
        pair = subprocess.run([sys.executable, "-m", "app.cli", "edge", "pair", "--user", "PractitionerRole/9",
                               "--name", "Dr. Lie", "--json", "--socket", str(sock)],
                              env=env, capture_output=True, text=True, timeout=60)
        assert pair.returncode == 0, pair.stderr
        answer = json.loads(pair.stdout)
        assert answer["url"].startswith(f"https://localhost:{port}/pair#t=") and answer["expires_s"] == 60
        with httpx.Client(base_url=f"https://localhost:{port}", verify=ssl.create_default_context(cafile=tls.ca_pem), timeout=10,
                          headers={"Origin": f"https://localhost:{port}"}) as h:
            r = h.post("/v1/pair", json={"token": answer["token"], "device": "Pixel"})
            assert r.status_code == 200
            me = h.get("/v1/me")
            assert me.status_code == 200 and me.json()["name"] == "Dr. Lie"
            assert {t["id"] for t in h.get("/v1/templates").json()["templates"]} >= {"allmennmedisin", "ortopedi"}
        devices = subprocess.run([sys.executable, "-m", "app.cli", "edge", "devices", "--json", "--socket", str(sock)],
                                 env=env, capture_output=True, text=True, timeout=60)
        assert devices.returncode == 0 and json.loads(devices.stdout)[0]["user"] == "PractitionerRole/9"
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, rest = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            _, rest = server.communicate()
    log = "".join(err_lines) + (rest or "")
    assert server.returncode == 0, log[-2000:]
    assert not sock.exists()  # the control socket is removed on exit
    assert "POST /v1/pair 200" in log and "GET /v1/me 200" in log  # the access log, for IT
    assert answer["token"] not in log and "Traceback" not in log
