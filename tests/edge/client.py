"""A test client of the edge server: pairing over HTTPS (httpx) and the capture WebSocket
(websockets), trusting the test CA, with the ``Origin`` a browser would send."""

from __future__ import annotations

import json
import ssl
import time
from typing import Any

import httpx
import numpy as np

from app.edge.frames import pack_frame


class EdgeClient:
    def __init__(self, url: str, ca_pem: str) -> None:
        self.url = url
        self.ca_pem = ca_pem
        self.cookie: str | None = None
        self.ws: Any = None
        self.sequence = 0

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_pem)

    def http(self) -> httpx.Client:
        cookies = {"scribe_device": self.cookie} if self.cookie else {}
        return httpx.Client(base_url=self.url, verify=self.ssl_context(), cookies=cookies,
                            headers={"Origin": self.url}, timeout=10)

    def pair(self, token: str, device: str = "testtelefon") -> httpx.Response:
        with self.http() as h:
            r = h.post("/v1/pair", json={"token": token, "device": device})
        if r.status_code == 200:
            self.cookie = r.cookies.get("scribe_device")
        return r

    def connect(self, origin: str | None = None, cookie: str | None = "__mine__") -> Any:
        from websockets.sync.client import connect

        cookie = self.cookie if cookie == "__mine__" else cookie
        headers = {"Cookie": f"scribe_device={cookie}"} if cookie else {}
        self.ws = connect(self.url.replace("https://", "wss://") + "/v1/capture", ssl=self.ssl_context(),
                          origin=origin or self.url, additional_headers=headers, open_timeout=10)  # type: ignore[arg-type]
        return self.ws

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def hello(self, template: str | None = "test", session: str | None = None, resume_from: int = 0) -> dict[str, Any]:
        self.send({"type": "hello", "session": session, "resume_from": resume_from, "rate": 16000, "template": template})
        return self.expect("ready", "error", "delivered", "discarded")

    def audio(self, samples: np.ndarray, offset: int, frame: int = 1600) -> int:
        """Send ``samples`` starting at sample ``offset`` in frames; the offset after them."""
        for i in range(0, len(samples), frame):
            self.ws.send(pack_frame(self.sequence, offset + i, samples[i:i + frame]))
            self.sequence += 1
        return offset + len(samples)

    def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout))

    def expect(self, *types: str, timeout: float = 20.0, seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The next message of one of ``types`` (others are collected in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {types} message")
            message = self.receive(left)
            if message.get("type") in types:
                return message
            if seen is not None:
                seen.append(message)

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
