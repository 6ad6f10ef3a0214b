"""The edge server over real TLS and real WebSockets on loopback, with a scripted transcriber and
LLM: pair → hello → audio → segments → a dropped connection → resume (resends dropped, no gap,
no repeat) → stop → draft → flags → approve → one delivered note; the grace period; busy."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from asr.types import SAMPLE_RATE
from tests.edge.client import EdgeClient
from tests.edge.fake_server import PATIENT, SCRIPT


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.05 * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)


def _paired(fake_edge: Any, client_factory: Any, user: str = "PractitionerRole/lege-1") -> EdgeClient:
    client = client_factory()
    r = client.pair(fake_edge.code(user))
    assert r.status_code == 200, r.text
    assert client.cookie
    return client


def _collect_until(client: EdgeClient, predicate: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not predicate(seen):
        seen.append(client.receive(max(0.1, deadline - time.monotonic())))
    return seen


def _segments(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("type") == "segment"]


def test_pairing_cookie_is_httponly_secure_strict_and_me_answers(fake_edge: Any, client_factory: Any) -> None:
    client = client_factory()
    with client.http() as h:
        assert h.get("/v1/me").status_code == 401  # not paired yet
        r = h.post("/v1/pair", json={"token": fake_edge.code(name="Dr. Hansen"), "device": "Pixel"})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie and "max-age=43200" in cookie
    client.cookie = r.cookies.get("scribe_device")
    with client.http() as h:
        me = h.get("/v1/me").json()
        templates = h.get("/v1/templates").json()
        page = h.get("/")
    assert me["user"] == "PractitionerRole/lege-1" and me["name"] == "Dr. Hansen" and 0 < me["expires_s"] <= 43200
    assert templates == {"templates": [{"id": "test", "title": "Testnotat"}], "default": "test"}
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "max-age" in page.headers["strict-transport-security"]


def test_record_drop_resume_draft_approve_delivers_once(fake_edge: Any, client_factory: Any) -> None:
    client = _paired(fake_edge, client_factory)
    client.connect()
    ready = client.hello()
    assert ready["type"] == "ready" and ready["resume_from"] == 0 and ready["segments"] == []
    session = ready["session"]
    audio = _noise(6.0)
    offset = client.audio(audio[: int(2.5 * SAMPLE_RATE)], 0)
    seen = _collect_until(client, lambda s: len(_segments(s)) >= 2 and any(m["type"] == "ack" for m in s))
    first = _segments(seen)
    assert [m["text"] for m in first] == [SCRIPT[0][0], SCRIPT[1][0]]
    assert first[0]["smalltalk"] and not first[1]["smalltalk"]  # the fishing trip stays out of the note
    acked = max(m["offset"] for m in seen if m["type"] == "ack")
    assert 0 < acked <= offset

    # the server drops the connection mid-consultation (as a flaky ward Wi-Fi would)
    for listener in list(fake_edge.state.connections[next(iter(fake_edge.state.connections))]):
        listener({"__close__": 1012})
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed):  # the socket is closed under the client (after what was queued)
        while True:
            client.receive(5)

    client.connect()
    again = client.hello(session=session, resume_from=acked)
    assert again["type"] == "ready" and again["session"] == session
    resume = again["resume_from"]
    assert resume == offset  # everything sent before the drop had arrived
    assert [s["text"] for s in again["segments"]] == [SCRIPT[0][0], SCRIPT[1][0]]  # the transcript so far
    # the client resends from its last ack (duplicates), then the rest
    client.audio(audio[acked:], acked)
    client.send({"type": "stop"})
    seen = _collect_until(client, lambda s: any(m["type"] == "draft" for m in s), timeout=60)
    draft = next(m for m in seen if m["type"] == "draft")
    segments = again["segments"] + _segments(seen)
    ids = [s["id"] for s in segments]
    assert ids == sorted(set(ids)) == list(range(len(SCRIPT)))  # every turn once: no gap, no repeat
    assert fake_edge.state.sessions.get(session, fake_edge.state.pairings.device(client.cookie)).intake.expected == len(audio)
    assert draft["sections"] and draft["flags"] and draft["can_approve"] is False
    assert "hytta" not in " ".join(s["text"] for s in draft["sections"])

    client.send({"type": "approve", "patient": PATIENT})
    assert client.expect("error")["code"] == "flags_open"  # 10 mg was never said
    for flag in draft["flags"]:
        client.send({"type": "resolve_flag", "index": flag["index"], "how": "accepted"})
        flags = client.expect("flags")
    assert flags["can_approve"] is True
    client.send({"type": "approve", "patient": "12345678901"})
    assert client.expect("error")["code"] == "patient"  # wrong check digits: nothing sent
    client.send({"type": "approve", "patient": PATIENT})
    delivered = client.expect("delivered", timeout=30)
    assert delivered["receipt"]["sink"] == "test" and delivered["receipt"]["reference"] == "DocumentReference/1"
    assert len(fake_edge.notes) == 1
    user, patient, note = fake_edge.notes[0]
    assert user == "PractitionerRole/lege-1" and patient == PATIENT and "brystet" in note.text
    client.close()
    # the consultation is gone (wiped); a phone that lost the connection just then learns it was delivered
    client.connect()
    again = client.hello(session=session)
    assert again == delivered and len(fake_edge.notes) == 1
    other = _paired(fake_edge, client_factory, "PractitionerRole/lege-2")
    other.connect()
    assert other.hello(session=session)["code"] == "unknown_session"  # and only that phone
    transcriber = fake_edge.scribe.asr.made[-1]
    for _ in range(50):  # the wipe runs on a thread of its own once the capture thread ended
        if not transcriber.samples:
            break
        time.sleep(0.1)
    assert transcriber.samples == [] and transcriber.transcript.segments == []  # the audio and text were wiped


def test_discard_wipes_and_delivers_nothing(fake_edge: Any, client_factory: Any) -> None:
    client = _paired(fake_edge, client_factory)
    client.connect()
    client.hello()
    client.audio(_noise(1.5), 0)
    client.expect("segment")
    client.send({"type": "discard"})
    assert client.expect("discarded")["type"] == "discarded"
    assert fake_edge.notes == [] and fake_edge.state.sessions.stats()["sessions"] == 0
    assert '"outcome": "discarded"' in fake_edge.audit_path.read_text() or "discarded" in fake_edge.audit_path.read_text()


def test_grace_period_wipes_an_abandoned_consultation(fake_edge: Any, client_factory: Any) -> None:
    fake_edge.state.sessions.grace_s = 0.5
    client = _paired(fake_edge, client_factory)
    client.connect()
    session = client.hello()["session"]
    client.audio(_noise(1.2), 0)
    client.expect("segment")
    client.close()
    time.sleep(1.0)
    assert fake_edge.state.sessions.reap() == 1
    client.connect()
    refused = client.hello(session=session)
    assert refused["code"] == "unknown_session"


def test_busy_beyond_the_maximum_and_the_others_unaffected(fake_edge: Any, client_factory: Any) -> None:
    fake_edge.state.sessions.max_live = 1
    a = _paired(fake_edge, client_factory)
    b = _paired(fake_edge, client_factory, "PractitionerRole/lege-2")
    a.connect()
    assert a.hello()["type"] == "ready"
    b.connect()
    busy = b.hello()
    assert busy["code"] == "busy" and "opptatt" in busy["message"]
    a.audio(_noise(1.5), 0)
    assert a.expect("segment")["text"] == SCRIPT[0][0]
    assert fake_edge.state.sessions.stats()["refused"] == 1


def test_backlog_refuses_new_consultations(fake_edge: Any) -> None:
    sessions = fake_edge.state.sessions
    device = type("D", (), {"id": "x", "user": "PractitionerRole/a"})()
    s = sessions.new(device, "test")
    for _ in range(50):  # the scripted transcriber takes 12 s of audio in at once
        s.source.push(np.zeros(int(12 * SAMPLE_RATE), dtype=np.float32))
        time.sleep(0.1)
        if s.backlog_s < 1:
            break
    assert s.backlog_s < 1  # kept up
    s._transcribed_s -= 20  # as if Whisper were 20 s behind on this one
    from app.edge.sessions import EdgeError

    with pytest.raises(EdgeError) as refused:
        sessions.new(device, "test")
    assert refused.value.code == "busy"
    assert fake_edge.state.sessions.stats()["backlog_s"] >= 19.9
    sessions.close()


def test_stop_transcribes_every_sample_already_taken(fake_edge: Any) -> None:
    """Stop ends the phone's audio, not the transcription: audio still waiting for a slow
    Whisper when the phone says stop reaches the transcriber before the draft."""
    from app.edge.frames import Frame
    from app.edge.sessions import LiveSession
    from tests.fakes import ScriptedTranscriber

    class Slow(ScriptedTranscriber):
        def insert_audio_chunk(self, chunk: Any) -> None:
            time.sleep(0.05)  # 100 ms of audio takes 50 ms, one chunk at a time: a backlog builds
            super().insert_audio_chunk(chunk)

    made: list[Slow] = []
    fake_edge.scribe.asr.transcriber = lambda clock=None, vocabulary=(): made.append(Slow(SCRIPT)) or made[-1]
    device = type("D", (), {"id": "x", "user": "PractitionerRole/a"})()
    session = LiveSession(fake_edge.scribe, fake_edge.state.sessions.templates["test"], device)
    audio = (_noise(8.0) * 32767).astype("<i2")
    for k in range(0, len(audio), 1600):
        session.take_audio(Frame(k // 1600, k, audio[k:k + 1600].tobytes()))
    assert session.backlog_s > 1.0  # Whisper is behind when the phone stops
    draft = session.stop_and_draft()
    assert draft["type"] == "draft"
    assert sum(len(s) for s in made[-1].samples) == len(audio)  # every sample was transcribed
    session.end()
