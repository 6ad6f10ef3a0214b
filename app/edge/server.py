"""The edge server's web app (FastAPI on uvicorn, TLS only): the phone client's files, the
pairing and device API, and the capture WebSocket (``docs/edge-protocol.md``).

One process holds one :class:`~summarize.consultation.engine.Scribe` (the models) shared by
every phone's consultation. The access log is this module's own: method, route, status and
milliseconds, never a query string, a cookie, a token, a patient number or text.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.edge.frames import FrameError, parse_frame
from app.edge.pairing import COOKIE, Device, PairingError, Pairings
from app.edge.sessions import EdgeError, EdgeSessions, LiveSession

logger = logging.getLogger("scribe.edge")
access = logging.getLogger("scribe.edge.access")

STATIC = Path(str(resources.files("app.edge") / "static"))
MAX_TEXT = 256 * 1024  # a JSON message from the phone (an edited section is the largest)
ROUTES = {"/", "/pair", "/sw.js", "/v1/pair", "/v1/me", "/v1/templates", "/v1/unpair", "/v1/health", "/v1/capture"}
CSP = ("default-src 'self'; connect-src 'self' wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
CLOSE = "__close__"


@dataclass
class EdgeState:
    """What the app serves from: settings, the shared engine, pairings and sessions."""

    settings: Any  # the app's Settings (sections edge, app, fhir, ...)
    scribe: Any
    pairings: Pairings
    sessions: EdgeSessions
    sink_for: Any  # (user, patient) -> sink
    connections: dict[str, set[Any]] = field(default_factory=dict)  # device id -> listeners
    ack_every_s: float = 1.0
    preview_every_s: float = 5.0

    @property
    def edge(self) -> Any:
        return self.settings.edge


class AccessLog:
    """ASGI middleware: security headers on every answer, one access line per request with the
    route only (a path that is no route is logged as "-"), never the query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = {"code": 0}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
                            (b"strict-transport-security", b"max-age=31536000"),
                            (b"permissions-policy", b"microphone=(self), camera=(), geolocation=()")]
                if scope["path"].startswith("/v1/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            elif message["type"] == "websocket.accept":
                status["code"] = 101
            elif message["type"] == "websocket.close" and not status["code"]:
                status["code"] = 403
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = scope["path"]
            route = path if path in ROUTES or path.startswith("/static/") and len(path) < 60 else "-"
            method = scope.get("method", "WS")
            access.info("%s %s %s %.0f ms", method, route, status["code"] or "-", (time.perf_counter() - t0) * 1000)


def _same_origin(headers: Any, extra: str = "") -> bool:
    """The ``Origin`` header is this server's own (``https://`` + the Host header), or the
    configured public URL."""
    origin = headers.get("origin")
    host = headers.get("host")
    if not origin or not host:
        return False
    allowed = {f"https://{host}"}
    if extra:
        allowed.add(extra.rstrip("/"))
    return origin in allowed


def create_app(state: EdgeState) -> FastAPI:
    app = FastAPI(title="ambient-scribe edge", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.edge = state
    app.add_middleware(AccessLog)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def device_of(request: Request) -> Device | None:
        return state.pairings.device(request.cookies.get(COOKIE))

    def not_paired() -> JSONResponse:
        return JSONResponse({"error": "Telefonen er ikke koblet til. Skann en ny QR-kode fra IT."}, status_code=401)

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/pair")
    async def pair_page() -> FileResponse:
        return FileResponse(STATIC / "pair.html")

    @app.get("/sw.js")
    async def service_worker() -> FileResponse:
        return FileResponse(STATIC / "sw.js", media_type="text/javascript", headers={"Service-Worker-Allowed": "/"})

    @app.post("/v1/pair")
    async def pair(request: Request) -> Response:
        if not _same_origin(request.headers, state.edge.public_url):
            return JSONResponse({"error": "Forespørselen kom fra en annen side."}, status_code=403)
        body = await request.body()
        try:
            data = json.loads(body[:4096]) if len(body) <= 4096 else None
            token, label = data["token"], str(data.get("device", ""))
        except (ValueError, TypeError, KeyError):
            return JSONResponse({"error": "Ugyldig forespørsel."}, status_code=400)
        try:
            device, secret = state.pairings.redeem(token, label)
        except PairingError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        logger.info("device %s paired", device.id)
        response = JSONResponse({"device": device.id, "user": device.user, "name": device.name,
                                 "expires_s": round(state.pairings.shift_s)})
        response.set_cookie(COOKIE, secret, max_age=round(state.pairings.shift_s), path="/", secure=True,
                            httponly=True, samesite="strict")
        return response

    @app.get("/v1/me")
    async def me(request: Request) -> Response:
        device = device_of(request)
        if device is None:
            return not_paired()
        return JSONResponse({"device": device.id, "user": device.user, "name": device.name,
                             "expires_s": max(0, round(device.expires_at - time.time()))})

    @app.post("/v1/unpair")
    async def unpair(request: Request) -> Response:
        if not _same_origin(request.headers, state.edge.public_url):
            return JSONResponse({"error": "Forespørselen kom fra en annen side."}, status_code=403)
        device = device_of(request)
        if device is None:
            return not_paired()
        state.pairings.revoke(device.id)
        response = JSONResponse({"unpaired": True})
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    @app.get("/v1/templates")
    async def templates(request: Request) -> Response:
        if device_of(request) is None:
            return not_paired()
        items = [{"id": t.id, "title": t.title} for t in sorted(state.sessions.templates.values(), key=lambda t: t.title)]
        default = state.settings.app.default_template
        if default not in state.sessions.templates and items:
            default = items[0]["id"]
        return JSONResponse({"templates": items, "default": default})

    @app.get("/v1/health")
    async def health() -> Response:
        return JSONResponse({"ok": True, **state.sessions.stats()})

    @app.websocket("/v1/capture")
    async def capture(ws: WebSocket) -> None:
        if not _same_origin(ws.headers, state.edge.public_url):
            await ws.close(code=4403)  # before accept: an HTTP 403, nothing said to a foreign page
            return
        await ws.accept()
        device = state.pairings.device(ws.cookies.get(COOKIE))
        if device is None:
            await ws.send_json({"type": "error", "code": "not_paired",
                                "message": "Telefonen er ikke koblet til (eller koblingen er trukket tilbake)."})
            await ws.close(code=4401)
            return
        await CaptureConnection(state, ws, device).run()

    return app


class CaptureConnection:
    """One phone's WebSocket: hello, audio frames, the review messages, until it closes."""

    def __init__(self, state: EdgeState, ws: WebSocket, device: Device) -> None:
        self.state = state
        self.ws = ws
        self.device = device
        self.loop = asyncio.get_running_loop()
        self.out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.session: LiveSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self._last_ack = 0.0
        self._acked = -1
        self.listener = self._listener  # one bound method: attach/detach compare it by identity

    def _listener(self, message: dict[str, Any]) -> None:
        """Called from any thread (the capture thread's events): queue for the sender."""
        with contextlib.suppress(RuntimeError):  # the loop closed (server shutdown)
            self.loop.call_soon_threadsafe(self.out.put_nowait, message)

    def error(self, code: str, message: str, **extra: Any) -> None:
        self.out.put_nowait({"type": "error", "code": code, "message": message, **extra})

    async def sender(self) -> None:
        while True:
            message = await self.out.get()
            if CLOSE in message:
                with contextlib.suppress(Exception):
                    await self.ws.close(code=int(message[CLOSE]))
                return
            await self.ws.send_text(json.dumps(message, ensure_ascii=False))

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self) -> None:
        conns = self.state.connections.setdefault(self.device.id, set())
        conns.add(self.listener)
        send_task = asyncio.ensure_future(self.sender())
        try:
            await self.receive_loop()
        except WebSocketDisconnect:
            pass
        except Exception as exc:  # never a crash of the server, never patient text in the log
            logger.warning("capture connection failed: %s", type(exc).__name__)
            self.error("internal", "Intern feil på serveren; koble til igjen.")
            self.out.put_nowait({CLOSE: 1011})
        finally:
            conns.discard(self.listener)
            if self.session is not None:
                self.session.detach(self.listener)
            for task in list(self.tasks):
                task.cancel()
            if not send_task.done():
                # let queued messages (an error, a close) go out, briefly, then end the sender
                self.out.put_nowait({CLOSE: 1000})
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(send_task), timeout=0.5)
                send_task.cancel()

    async def receive_loop(self) -> None:
        hello = False
        while True:
            timeout = None if hello else 15.0
            try:
                message = await asyncio.wait_for(self.ws.receive(), timeout=timeout)
            except TimeoutError:
                self.error("bad_hello", "Ingen hello-melding kom.")
                self.out.put_nowait({CLOSE: 4400})
                return
            if message["type"] == "websocket.disconnect":
                return
            if not self.state.pairings.alive(self.device.id):
                self.error("not_paired", "Koblingen til telefonen er trukket tilbake.")
                self.out.put_nowait({CLOSE: 4401})
                return
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                if self.session is None:
                    self.error("bad_hello", "Send hello før lyd.")
                    continue
                self.audio(data)
            elif text is not None:
                if len(text) > MAX_TEXT:
                    self.error("bad_message", "Meldingen er for stor.")
                    continue
                try:
                    msg = json.loads(text)
                    kind = msg["type"] if isinstance(msg, dict) else None
                except (ValueError, KeyError, TypeError):
                    kind = None
                if not isinstance(kind, str):
                    self.error("bad_message", "Meldingen er ikke forstått (JSON med 'type').")
                    continue
                if kind == "hello":
                    if hello:
                        self.error("bad_hello", "Hello er allerede mottatt.")
                        continue
                    hello = await self.hello(msg)
                    if not hello:
                        return
                elif self.session is None:
                    self.error("bad_hello", "Send hello først.")
                else:
                    await self.command(kind, msg)

    async def hello(self, msg: dict[str, Any]) -> bool:
        sessions = self.state.sessions
        try:
            if msg.get("rate", 16000) != 16000:
                raise EdgeError("bad_hello", "Lyden må være 16 kHz mono PCM16.", close=4400)
            session_id = msg.get("session")
            final = sessions.finished(session_id, self.device) if session_id is not None else None
            if final is not None:  # it ended while the phone was away: say how, once more
                self.out.put_nowait(final)
                self.out.put_nowait({CLOSE: 1000})
                return False
            if session_id is None:
                template = msg.get("template")
                session = await asyncio.to_thread(sessions.new, self.device, template if isinstance(template, str) else None)
            else:
                session = sessions.get(session_id, self.device)
        except EdgeError as exc:
            self.error(exc.code, exc.message)
            self.out.put_nowait({CLOSE: exc.close or 4400})
            return False
        self.session = session
        old = session.attach(self.listener)
        if old is not None and old is not self.listener:
            old({CLOSE: 4409})  # the phone came back on a new connection: the old one goes
        self.out.put_nowait(session.ready_message())
        if session.draft_message is not None:
            self.out.put_nowait(session.draft_message)
        self._acked = session.intake.expected
        self.spawn(self.previews(session))
        return True

    def audio(self, data: bytes) -> None:
        assert self.session is not None
        try:
            frame = parse_frame(data, self.state.edge.max_frame_bytes)
            expected = self.session.take_audio(frame)
        except FrameError as exc:
            self.error(exc.code, exc.message, **exc.extra)
            return
        except EdgeError as exc:
            self.error(exc.code, exc.message)
            return
        now = time.monotonic()
        if expected != self._acked and now - self._last_ack >= self.state.ack_every_s:
            self.ack(expected, now)

    def ack(self, offset: int, now: float | None = None) -> None:
        self._acked = offset
        self._last_ack = time.monotonic() if now is None else now
        self.out.put_nowait({"type": "ack", "offset": offset})

    async def previews(self, session: LiveSession) -> None:
        """The draft so far, every few seconds while recording, when it changed."""
        last = None
        while session.state in ("recording", "paused"):
            await asyncio.sleep(self.state.preview_every_s)
            message = await asyncio.to_thread(session.preview)
            if message is not None and message != last:
                last = message
                self.out.put_nowait(message)

    async def command(self, kind: str, msg: dict[str, Any]) -> None:
        session = self.session
        assert session is not None
        try:
            if kind == "ping":
                self.out.put_nowait({"type": "pong"})
            elif kind in ("pause", "resume"):
                session.pause(kind == "pause")
            elif kind == "stop":
                self.ack(session.intake.expected)
                self.spawn(self.draft(session))
            elif kind == "edit_section":
                section, text = msg.get("section"), msg.get("text")
                if not isinstance(section, str) or not isinstance(text, str):
                    raise EdgeError("bad_message", "edit_section trenger 'section' og 'text'.")
                self.out.put_nowait(session.edit_section(section, text))
            elif kind == "resolve_flag":
                index, how = msg.get("index"), msg.get("how", "accepted")
                if not isinstance(index, int) or how not in ("accepted", "edited"):
                    raise EdgeError("bad_message", "resolve_flag trenger 'index' og 'how' (accepted eller edited).")
                self.out.put_nowait(session.resolve_flag(index, how))
            elif kind == "approve":
                self.spawn(self.approve(session, msg.get("patient")))
            elif kind == "discard":
                self.state.sessions.end(session, "discarded", final={"type": "discarded"})
                self.out.put_nowait({"type": "discarded"})
            else:
                raise EdgeError("bad_message", f"Ukjent meldingstype {kind[:30]!r}.")
        except EdgeError as exc:
            self.error(exc.code, exc.message)

    async def draft(self, session: LiveSession) -> None:
        try:
            message = await asyncio.to_thread(session.stop_and_draft)
        except EdgeError as exc:
            self.error(exc.code, exc.message)
            return
        except Exception as exc:  # the LLM or the template failed: said, not crashed
            logger.warning("drafting failed: %s", type(exc).__name__)
            session.send({"type": "error", "code": "internal", "message": "Utkastet kunne ikke lages."})
            return
        session.send({"type": "state", "state": "review"})
        session.send(message)

    async def approve(self, session: LiveSession, patient: Any) -> None:
        from summarize.delivery.fhir_resource import parse_subject

        try:
            if not isinstance(patient, str):
                raise EdgeError("patient", "Fødselsnummer eller D-nummer mangler.")
            try:
                parse_subject(patient)
            except Exception as exc:  # SinkConfigError with the reason (check digits, format)
                raise EdgeError("patient", f"Ugyldig pasient: {str(exc).splitlines()[0][:100]}") from None
            sink = self.state.sink_for(self.device.user, patient.strip())
            done = functools.partial(self.state.sessions.forget, session)
            await asyncio.to_thread(session.approve, sink, lambda message: done(final=message))
        except EdgeError as exc:
            self.error(exc.code, exc.message)
            return
        logger.info("consultation %s delivered", session.id[:4])
