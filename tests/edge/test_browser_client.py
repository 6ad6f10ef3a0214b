"""The phone client's own behaviour in Debian's Chromium against the edge server on fakes
(scripted transcriber and LLM, so it is fast): the app under its Content-Security-Policy with no
page error, Pause drops the microphone's audio without a gap in the offsets, a dropped connection
while paused resumes paused, Stopp while paused drafts, Godkjenn waits for the flags and the
fødselsnummer, and the receipt."""

from __future__ import annotations

import json
import os
import time
import wave
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.edge.browser import CHROMIUM, LAUNCH_ARGS, nss_home, wait
from tests.edge.fake_server import PATIENT


def _tone(path: Path, seconds: float = 90.0, rate: int = 48_000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.2 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


@pytest.mark.timeout(300)
def test_pause_reconnect_stop_approve_in_the_browser(fake_edge: Any, tls: SimpleNamespace, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed: ./install.sh --test installs it")
    wav = _tone(tmp_path / "tone.wav")
    home = nss_home(tmp_path, tls.ca_pem)
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, env={**os.environ, "HOME": str(home)},
                                    args=[*LAUNCH_ARGS, f"--use-file-for-fake-audio-capture={wav}%noloop"])
        page = browser.new_context(viewport={"width": 412, "height": 915}, is_mobile=True, has_touch=True,
                                   locale="nb-NO", permissions=["microphone"]).new_page()
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        # the browser's own line for the expected 401 of /v1/me before pairing is not a problem
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "status of 401" not in m.text else None)

        def on_ws(ws: Any) -> None:
            ws.on("framesent", lambda m: sent.append(json.loads(m)) if isinstance(m, str) else None)
            ws.on("framereceived", lambda m: received.append(json.loads(m)) if isinstance(m, str) else None)

        page.on("websocket", on_ws)
        page.goto(f"{fake_edge.url}/")
        wait(page, "() => document.body.innerText.includes('ikke koblet til')", 20)  # not paired yet
        page.goto(f"{fake_edge.url}/pair#t={fake_edge.code(name='Dr. Test')}")
        wait(page, "() => document.body.innerText.includes('Dr. Test')", 20)
        page.goto(f"{fake_edge.url}/")
        page.wait_for_selector("[data-testid=record]:not([hidden])")
        page.click("[data-testid=record]")
        wait(page, "() => window.scribeState.connection === 'connected' && window.scribeState.capturedSamples > 48000", 30)
        assert page.inner_text("[data-testid=pause]") == "Pause"

        page.click("[data-testid=pause]")
        time.sleep(0.5)
        held = page.evaluate("() => window.scribeState.capturedSamples")
        time.sleep(2.0)
        assert page.evaluate("() => window.scribeState.capturedSamples") == held  # nothing recorded while paused
        assert page.is_visible("[data-testid=paused]") and page.inner_text("[data-testid=pause]") == "Fortsett"
        assert page.evaluate("() => document.querySelector('[data-testid=level]').value") > -60  # the meter still moves
        wait(page, "() => true", 1)
        assert any(m == {"type": "state", "state": "paused"} for m in received)

        before = len(sent)
        for listeners in list(fake_edge.state.connections.values()):  # the server drops the connection
            for listener in list(listeners):
                listener({"__close__": 1012})
        wait(page, "() => window.scribeState.reconnects >= 1 && window.scribeState.connection === 'connected'", 30)
        wait(page, "() => true", 1)
        after = [m["type"] for m in sent[before:] if m["type"] != "ping"]
        assert after[:2] == ["hello", "pause"]  # resumed, still paused

        page.click("[data-testid=pause]")  # Fortsett
        wait(page, f"() => window.scribeState.capturedSamples > {held + 32000}", 20)
        page.click("[data-testid=record]")  # Stopp
        page.wait_for_selector("[data-testid=draft] [data-testid=section]", timeout=60_000)
        captured = page.evaluate("() => window.scribeState.capturedSamples")
        approve = page.locator("[data-testid=approve]")
        assert not approve.is_enabled()  # flags open, no patient
        page.fill("[data-testid=patient]", "12345678901")
        page.locator("[data-testid=patient]").blur()
        assert page.is_visible("[data-testid=patient-error]")
        page.fill("[data-testid=patient]", PATIENT)
        while page.locator("[data-testid=accept-flag]").count():
            page.locator("[data-testid=accept-flag]").first.click()
            time.sleep(0.3)
        wait(page, "() => !document.querySelector('[data-testid=approve]').disabled", 20)
        approve.click()
        page.wait_for_selector("[data-testid=receipt]:not([hidden])", timeout=30_000)
        receipt = page.inner_text("[data-testid=receipt]")
        browser.close()
    assert "Levert til EPJ" in receipt and "lagret i testmottaket" in receipt and "DocumentReference/1" in receipt
    assert len(fake_edge.notes) == 1 and fake_edge.notes[0][:2] == ("PractitionerRole/lege-1", PATIENT)
    acks = [m["offset"] for m in received if m["type"] == "ack"]
    assert acks and acks[-1] == captured  # every recorded sample reached the server, and no paused one
    assert not problems, problems  # no page error, no Content-Security-Policy violation
