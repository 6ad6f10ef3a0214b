"""What the edge server refuses, and that a refusal never crashes it or touches another session:
reused, expired and forged codes, a missing or revoked cookie, a foreign Origin, oversized and
malformed frames, offsets from the future, another device's session, plain http; the access
log holds no code, query string, patient number or text; the control socket is private."""

from __future__ import annotations

import logging
import os
import stat
import time
from typing import Any

import httpx
import numpy as np
import pytest

from app.edge.frames import HEADER, pack_frame
from app.edge.pairing import PairingError, Pairings
from asr.errors import ConfigError
from asr.types import SAMPLE_RATE
from tests.edge.client import EdgeClient
from tests.edge.fake_server import PATIENT, SCRIPT


def _noise(seconds: float) -> np.ndarray:
    return (0.05 * np.random.default_rng(3).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def _paired(fake_edge: Any, client_factory: Any, user: str = "PractitionerRole/lege-1") -> EdgeClient:
    client = client_factory()
    assert client.pair(fake_edge.code(user)).status_code == 200
    return client


def test_codes_are_single_use_expire_and_cannot_be_forged() -> None:
    now = [1000.0]
    pairings = Pairings(ttl_s=60, shift_s=3600, clock=lambda: now[0])
    code, ttl = pairings.new_code("PractitionerRole/abc", "Dr. A")
    assert ttl == 60 and len(code) >= 43  # 256 bit, url-safe base64
    device, secret = pairings.redeem(code, "Pixel 8")
    assert device.user == "PractitionerRole/abc" and pairings.device(secret) is device
    with pytest.raises(PairingError, match="brukt"):
        pairings.redeem(code)  # reused
    late, _ = pairings.new_code("PractitionerRole/abc")
    now[0] += 61
    with pytest.raises(PairingError, match="utløpt"):
        pairings.redeem(late)  # expired
    with pytest.raises(PairingError):
        pairings.redeem("A" * 43)  # forged
    with pytest.raises(PairingError):
        pairings.redeem("x")  # malformed
    now[0] += 3600
    assert pairings.device(secret) is None  # the shift ended
    with pytest.raises(ConfigError):
        pairings.new_code("Patient/123")  # a code is for a clinician only


def test_http_refusals(fake_edge: Any, client_factory: Any) -> None:
    client = client_factory()
    code = fake_edge.code()
    assert client.pair(code).status_code == 200
    reuse = client_factory().pair(code)
    assert reuse.status_code == 401 and "brukt" in reuse.json()["error"]
    assert client_factory().pair("F" * 43).status_code == 401
    with client_factory().http() as h:
        foreign = h.post("/v1/pair", json={"token": fake_edge.code()}, headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert h.post("/v1/pair", content=b"{not json").status_code == 400
        assert h.get("/v1/templates").status_code == 401  # no cookie
        assert h.get("/static/../../etc/passwd").status_code == 404


def test_plain_http_gets_no_page(fake_edge: Any) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(fake_edge.url.replace("https://", "http://") + "/", timeout=5)


def test_websocket_refusals_never_crash_or_touch_another_session(fake_edge: Any, client_factory: Any) -> None:
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    a = _paired(fake_edge, client_factory)
    a.connect()
    session_a = a.hello()["session"]
    a.audio(_noise(1.2), 0)
    assert a.expect("segment")["text"] == SCRIPT[0][0]

    # a missing cookie, a forged cookie
    for cookie in (None, "forged-cookie-value"):
        anon = client_factory()
        anon.connect(cookie=cookie)
        refused = anon.receive()
        assert refused["code"] == "not_paired"
        with pytest.raises(ConnectionClosed):
            anon.receive()
        assert anon.ws.close_code == 4401

    # a foreign Origin is refused before the socket opens
    with pytest.raises(InvalidStatus) as status:
        client_factory().connect(origin="https://evil.example", cookie=a.cookie)
    assert status.value.response.status_code == 403

    # device B cannot open or resume device A's session
    b = _paired(fake_edge, client_factory, "PractitionerRole/lege-2")
    b.connect()
    stolen = b.hello(session=session_a, resume_from=0)
    assert stolen["code"] == "not_yours"

    # bad frames on B's own session: each an error, the connection and the server go on
    b.connect()
    assert b.hello()["type"] == "ready"
    big = b"\0" * (fake_edge.settings.edge.max_frame_bytes + 2)
    b.ws.send(big)
    assert b.expect("error")["code"] == "frame_too_large"
    b.ws.send(b"\1\2\3")
    assert b.expect("error")["code"] == "bad_frame"
    b.ws.send(HEADER.pack(0, 0) + b"\1\2\3")
    assert b.expect("error")["code"] == "bad_frame"  # odd PCM16 byte count
    b.ws.send(pack_frame(1, 5 * SAMPLE_RATE, _noise(0.1)))
    gap = b.expect("error")
    assert gap["code"] == "gap" and gap["expected"] == 0
    b.ws.send(pack_frame(2, 4_000_000_000, _noise(0.1)))
    assert b.expect("error")["code"] == "future_offset"
    b.send({"type": "approve", "patient": PATIENT})
    assert b.expect("error")["code"] == "not_ready"
    b.ws.send("{not json")
    assert b.expect("error")["code"] == "bad_message"
    b.send({"type": "no-such-thing"})
    assert b.expect("error")["code"] == "bad_message"
    b.send({"type": "resolve_flag", "index": "x"})
    assert b.expect("error")["code"] in ("bad_message", "not_ready")
    b.send({"type": "ping"})
    assert b.expect("pong")["type"] == "pong"

    # A's consultation never noticed
    a.audio(_noise(1.0), int(1.2 * SAMPLE_RATE))
    assert a.expect("segment")["text"] == SCRIPT[1][0]


def test_revoking_a_device_closes_its_socket_and_wipes_its_consultation(fake_edge: Any, client_factory: Any) -> None:
    from websockets.exceptions import ConnectionClosed

    from app.edge.control import request

    a = _paired(fake_edge, client_factory)
    a.connect()
    session = a.hello()["session"]
    a.audio(_noise(1.2), 0)
    a.expect("segment")
    devices = request(fake_edge.socket, {"op": "devices"})["devices"]
    assert len(devices) == 1 and devices[0]["user"] == "PractitionerRole/lege-1" and devices[0]["device"] == "testtelefon"
    request(fake_edge.socket, {"op": "revoke", "id": devices[0]["id"]})
    assert a.expect("error")["code"] == "not_paired"
    with pytest.raises(ConnectionClosed):
        a.receive()
    assert a.ws.close_code == 4401
    assert fake_edge.state.sessions.stats()["sessions"] == 0
    a.connect()
    assert a.receive()["code"] == "not_paired"  # the revoked cookie opens nothing any more
    with a.http() as h:
        assert h.get("/v1/me").status_code == 401
    assert session not in str(fake_edge.state.sessions.stats())


def test_access_log_holds_no_code_query_patient_or_text(fake_edge: Any, client_factory: Any,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    code = fake_edge.code()
    client = client_factory()
    assert client.pair(code).status_code == 200
    with client.http() as h:
        h.get("/v1/me?token=SECRETQUERY&fnr=" + PATIENT)
        h.get("/no/such/path/" + PATIENT)
    client.connect()
    client.hello()
    client.audio(_noise(2.2), 0)
    client.expect("segment")
    client.send({"type": "discard"})
    client.expect("discarded")
    client.close()
    for _ in range(50):  # the socket's access line is written when it closes
        if any("WS /v1/capture" in r.getMessage() for r in caplog.records):
            break
        time.sleep(0.1)
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]  # httpx is this test's client
    text = "\n".join(r.getMessage() for r in server_side)
    access = [r for r in server_side if r.name == "scribe.edge.access"]
    assert any("/v1/me 200" in r.getMessage() for r in access) and any("WS /v1/capture 101" in r.getMessage() for r in access)
    for secret in (code, client.cookie, "SECRETQUERY", PATIENT, "hytta", "brystet", "ørret"):
        assert secret and secret not in text


def test_control_socket_is_private_and_single(fake_edge: Any, tls: Any) -> None:
    path = fake_edge.socket
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.stat().st_uid == os.getuid()
    from app.edge.control import prepare_socket_path

    with pytest.raises(ConfigError, match="already listens"):
        prepare_socket_path(path)


def test_cli_pair_devices_revoke(fake_edge: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from app.cli import main

    sock = str(fake_edge.socket)
    assert main(["edge", "pair", "--user", "PractitionerRole/77", "--name", "Dr. Berg", "--json", "--socket", sock]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["url"] == f"{fake_edge.url}/pair#t={out['token']}" and out["expires_s"] == 60
    assert main(["edge", "pair", "--user", "PractitionerRole/77", "--socket", sock]) == 0
    qr = capsys.readouterr().out
    assert "/pair#t=" in qr and ("█" in qr or "▀" in qr or "▄" in qr)  # the QR code, drawn in the terminal
    assert main(["edge", "pair", "--user", "not-a-user", "--socket", sock]) == 2
    assert "PractitionerRole" in capsys.readouterr().err
    assert main(["edge", "devices", "--socket", sock]) == 0
    assert "no paired phones" in capsys.readouterr().out
    assert main(["edge", "revoke", "nope", "--socket", sock]) == 2
    assert "no paired device" in capsys.readouterr().err
    assert main(["edge", "devices", "--socket", "/nonexistent/edge.sock"]) == 2
    assert "no edge server is running" in capsys.readouterr().err


def test_serve_refuses_without_tls_or_socket(tmp_path: Any, tls: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    assert main(["edge", "serve", "--socket", str(tmp_path / "s.sock")]) != 0
    assert "needs TLS" in capsys.readouterr().err
    (tmp_path / "bad.pem").write_text("not a certificate")
    assert main(["edge", "serve", "--cert", str(tmp_path / "bad.pem"), "--key", str(tmp_path / "bad.pem")]) != 0
    assert "do not load" in capsys.readouterr().err
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert main(["edge", "serve", "--cert", tls.cert, "--key", tls.key, "--socket", str(blocked / "edge.sock")]) != 0
    assert "control socket's folder" in capsys.readouterr().err
