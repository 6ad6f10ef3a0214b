"""A small OpenAI-compatible chat server for tests (stdlib only, a real process and socket).

    python -m tests.llm_server --port 0 --mode ok|slow|garbage|error500 [--reply TEXT]

prints the port it listens on (first line of stdout) and serves until killed (https with
``--tls-cert FILE --tls-key FILE``):

* ``POST …/chat/completions``: with ``"stream": true`` the canned reply as
  Server-Sent Events of ``chat.completion.chunk`` objects (``choices[0].delta.content``,
  a final chunk with ``finish_reason``, a usage chunk when ``stream_options.include_usage``,
  then ``data: [DONE]``); otherwise one ``chat.completion`` JSON object. ``max_tokens``
  smaller than the reply's pieces ends it early with ``finish_reason: "length"``.
* ``GET …/models``: one model, ``--model`` (default ``test-model``).
* ``GET /_last``: the last chat request as JSON (``method``, ``path``, ``headers``,
  ``body``) so tests can check the Authorization header and that messages arrived intact.

Modes: ``ok``; ``slow`` (waits ``--delay`` seconds before the answer and between chunks);
``garbage`` (an event stream of non-JSON data); ``error500`` (HTTP 500 whose body echoes
the request, to prove clients do not show it); ``nochoices`` (JSON chunks without
``choices``); ``cut`` (closes the stream after two chunks, no ``[DONE]``); ``json``
(answers with one JSON object even when asked to stream, as some servers do).
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("ok", "slow", "garbage", "error500", "nochoices", "cut", "json")


def split_reply(text: str, size: int = 4) -> list[str]:
    """The reply in the pieces a server streams (a few characters each, like tokens)."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


class _State:
    def __init__(self, mode: str, reply: str, delay: float, model: str) -> None:
        self.mode = mode
        self.reply = reply
        self.delay = delay
        self.model = model
        self.lock = threading.Lock()
        self.last: dict[str, Any] | None = None
        self.requests = 0


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeLLM/1.0"
    protocol_version = "HTTP/1.1"
    state: _State  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # keep the test output clean

    # ------------------------------------------------------------------ helpers

    def _json(self, status: int, obj: Any) -> None:
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _event(self, data: str) -> None:
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def _chunk(self, cid: str, delta: dict[str, Any], finish: str | None) -> str:
        return json.dumps({
            "id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": self.state.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }, ensure_ascii=False)

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path == "/_last":
            with self.state.lock:
                self._json(200, {"last": self.state.last, "requests": self.state.requests})
        elif self.path.endswith("/models"):
            self._json(200, {"object": "list", "data": [
                {"id": self.state.model, "object": "model", "owned_by": "test"}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        with self.state.lock:
            self.state.requests += 1
            self.state.last = {"method": "POST", "path": self.path,
                               "headers": dict(self.headers.items()), "body": body}
        if not self.path.endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._json(400, {"error": {"message": "messages required",
                                       "type": "invalid_request_error"}})
            return
        mode = self.state.mode
        if mode == "error500":
            # The body echoes the prompt, as some servers' tracebacks do.
            self._json(500, {"error": {"message": f"internal error on {body['messages']!r}",
                                       "type": "server_error"}})
            return
        pieces = split_reply(self.state.reply)
        finish = "stop"
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and 0 < max_tokens < len(pieces):
            pieces, finish = pieces[:max_tokens], "length"
        cid = f"chatcmpl-{self.state.requests}"
        if mode == "slow":
            time.sleep(self.state.delay)
        if not body.get("stream") or mode == "json":
            self._json(200, {
                "id": cid, "object": "chat.completion", "created": int(time.time()),
                "model": self.state.model,
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": "".join(pieces)}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(pieces),
                          "total_tokens": 10 + len(pieces)},
            })
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            if mode == "garbage":
                self._event("this is not json {")
                self._event("[DONE]")
                return
            if mode == "nochoices":
                self._event(json.dumps({"id": cid, "object": "chat.completion.chunk"}))
                self._event("[DONE]")
                return
            self._event(self._chunk(cid, {"role": "assistant", "content": ""}, None))
            for i, piece in enumerate(pieces):
                if mode == "slow":
                    time.sleep(self.state.delay)
                if mode == "cut" and i == 2:
                    return
                self._event(self._chunk(cid, {"content": piece}, None))
            self._event(self._chunk(cid, {}, finish))
            if (body.get("stream_options") or {}).get("include_usage"):
                self._event(json.dumps({
                    "id": cid, "object": "chat.completion.chunk", "model": self.state.model,
                    "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": len(pieces),
                                             "total_tokens": 10 + len(pieces)}}))
            self._event("[DONE]")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (stop string, timeout)


def make_server(port: int, mode: str, reply: str, delay: float = 3.0,
                model: str = "test-model", tls_cert: str | None = None,
                tls_key: str | None = None) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"state": _State(mode, reply, delay, model)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    if tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_cert, tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--mode", choices=MODES, default="ok")
    parser.add_argument("--reply", default="Pasienten har hatt brystsmerter i to dager.")
    parser.add_argument("--delay", type=float, default=3.0, help="seconds (slow mode)")
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--tls-cert", help="PEM certificate: serve https")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    server = make_server(args.port, args.mode, args.reply, args.delay, args.model,
                         args.tls_cert, args.tls_key)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
