"""Starting the edge server: the shared engine, the templates, the sink, pairing, and uvicorn
with TLS (never plain http: a browser gives a plain-http page no microphone, and the phones'
audio and notes must not cross the ward's network readable).

``build_state`` is what tests and the load benchmark use with a server of their own;
``serve`` is ``scribe edge serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.edge.control import start_control_server
from app.edge.pairing import Pairings, check_user, clean_label
from app.edge.server import CLOSE, EdgeState, create_app
from app.edge.sessions import EdgeSessions
from asr.errors import ConfigError

logger = logging.getLogger("scribe.edge")


def load_templates(settings: Any) -> dict[str, Any]:
    """Every valid note template (a broken one is left out, with a warning naming it)."""
    from summarize.templates.discovery import available_templates
    from summarize.templates.template import load_template

    extra = [Path(settings.app.template_dir).expanduser()] if settings.app.template_dir else None
    out: dict[str, Any] = {}
    for template_id in sorted(available_templates(extra)):
        try:
            out[template_id] = load_template(template_id, extra)
        except Exception as exc:  # TemplateError: one line naming the problem
            logger.warning("template %s left out: %s", template_id, str(exc).splitlines()[0][:120])
    if not out:
        raise ConfigError("no valid note template: see 'scribe templates list'")
    return out


def sink_factory(settings: Any, scribe: Any) -> Callable[[str, str], Any]:
    """``(user, patient) -> sink``: the configured EPJ sink with the paired clinician as author."""
    from summarize.delivery.registry import create_sink

    name = settings.app.sink.strip().lower()
    if name == "clipboard":
        raise ConfigError("the edge server delivers to the EPJ, not to a clipboard: set [app] sink = \"fhir\" "
                          "and the [fhir] section (see 'scribe epj check')")

    def make(user: str, patient: str) -> Any:
        if name == "fhir":
            return create_sink("fhir", config=settings.fhir.model_copy(update={"author": user}), patient=patient)
        return scribe.sink(name, patient=patient)

    return make


def build_state(settings: Any, scribe: Any, *, sink_for: Callable[[str, str], Any] | None = None,
                templates: dict[str, Any] | None = None) -> EdgeState:
    edge = settings.edge
    pairings = Pairings(ttl_s=edge.pair_ttl_s, shift_s=edge.shift_h * 3600)
    sessions = EdgeSessions(scribe, templates if templates is not None else load_templates(settings),
                            max_live=edge.max_consultations, max_backlog_s=edge.max_backlog_s, grace_s=edge.grace_s)
    state = EdgeState(settings, scribe, pairings, sessions, sink_for or sink_factory(settings, scribe))

    def on_revoke(device_id: str) -> None:
        for listener in list(state.connections.get(device_id, ())):
            listener({"type": "error", "code": "not_paired", "message": "Koblingen til telefonen er trukket tilbake."})
            listener({CLOSE: 4401})
        wiped = sessions.revoke_device(device_id)
        logger.info("device %s revoked (%d consultations wiped)", device_id, wiped)

    pairings.on_revoke.append(on_revoke)
    return state


def public_url(settings: Any) -> str:
    edge = settings.edge
    if edge.public_url:
        return edge.public_url.rstrip("/")
    host = edge.host if edge.host not in ("0.0.0.0", "::", "") else socket.getfqdn()
    return f"https://{host}:{edge.port}"


def control_handler(state: EdgeState, url: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def handle(request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "pair":
            user = check_user(str(request.get("user", "")))
            token, ttl = state.pairings.new_code(user, clean_label(str(request.get("name", ""))))
            logger.info("pairing code issued (valid %d s)", ttl)
            return {"ok": True, "url": f"{url}/pair#t={token}", "token": token, "expires_s": round(ttl)}
        if op == "devices":
            return {"ok": True, "devices": state.pairings.devices(), **state.sessions.stats()}
        if op == "revoke":
            device_id = str(request.get("id", ""))
            if not state.pairings.revoke(device_id):
                raise ConfigError(f"no paired device {device_id[:20]!r}: see 'scribe edge devices'")
            return {"ok": True, "revoked": device_id}
        raise ConfigError("unknown operation")

    return handle


def check_tls(cert: str, key: str) -> None:
    """The certificate and key load (one-line error otherwise), before the models do."""
    if not cert or not key:
        raise ConfigError("the edge server needs TLS: --cert PEM --key KEY (the hospital CA's certificate), "
                          "or [edge] cert and key")
    for what, path in (("certificate", cert), ("key", key)):
        if not Path(path).expanduser().is_file():
            raise ConfigError(f"TLS {what} not found: {path}")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(Path(cert).expanduser(), Path(key).expanduser())
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"TLS certificate and key do not load: {exc}") from None


def uvicorn_server(state: EdgeState, *, host: str, port: int, cert: str, key: str,
                   control_socket: Path | None, url: str, on_ready: Callable[[], None] | None = None) -> Any:
    """A configured ``uvicorn.Server`` (not started) whose lifespan runs the control socket and
    the grace-period reaper."""
    import uvicorn

    app = create_app(state)
    control: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> Any:
        if control_socket is not None:
            control["server"] = await start_control_server(control_socket, control_handler(state, url))
        reaper = asyncio.ensure_future(_reap(state))
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            reaper.cancel()
            if "server" in control:
                control["server"].close()
                with contextlib.suppress(OSError):
                    control_socket.unlink()  # type: ignore[union-attr]
            await asyncio.to_thread(state.sessions.close)
            state.pairings.clear()

    app.router.lifespan_context = lifespan
    config = uvicorn.Config(app, host=host, port=port, ssl_certfile=cert, ssl_keyfile=key, access_log=False,
                            log_config=None, log_level="warning", server_header=False, ws_max_size=1 << 20,
                            ws_ping_interval=20, ws_ping_timeout=20, timeout_graceful_shutdown=5, proxy_headers=False)
    return uvicorn.Server(config)


async def _reap(state: EdgeState) -> None:
    while True:
        await asyncio.sleep(min(5.0, state.edge.grace_s / 4))
        await asyncio.to_thread(state.sessions.reap)


class EdgeThread:
    """The server on a thread of its own (tests, the load benchmark): ``start()`` returns once it
    listens; ``stop()`` shuts it down (sessions wiped, control socket removed)."""

    def __init__(self, state: EdgeState, *, cert: str, key: str, host: str = "127.0.0.1", port: int = 0,
                 control_socket: Path | None = None) -> None:
        import threading

        if not port:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.state, self.host, self.port = state, host, port
        self.url = f"https://{'localhost' if host == '127.0.0.1' else host}:{port}"
        self._ready = threading.Event()
        self.server = uvicorn_server(state, host=host, port=port, cert=cert, key=key, control_socket=control_socket,
                                     url=self.url, on_ready=self._ready.set)
        self._thread = threading.Thread(target=self._run, name="edge-server", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve())

    def start(self, timeout: float = 30.0) -> EdgeThread:
        self._thread.start()
        deadline = timeout
        import time as _time

        t0 = _time.monotonic()
        while not self.server.started:
            if _time.monotonic() - t0 > deadline or not self._thread.is_alive():
                raise RuntimeError("the edge server did not start")
            _time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(15)
