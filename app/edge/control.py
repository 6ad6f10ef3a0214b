"""The local pairing channel: ``scribe edge pair/devices/revoke`` talk to the running server
over a Unix socket that only the server's user can open (directory 0700, socket 0600).

One JSON object per line each way. Requests: ``{"op": "pair", "user", "name"}`` →
``{"ok", "url", "token", "expires_s"}``; ``{"op": "devices"}`` → ``{"ok", "devices"}``;
``{"op": "revoke", "id"}`` → ``{"ok", "revoked"}``. A bad request gets ``{"ok": false,
"error"}``. Nothing on this channel is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asr.errors import ConfigError, ScribeError

logger = logging.getLogger(__name__)

MAX_LINE = 4096
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class ControlError(ScribeError):
    """The control socket cannot be reached or answered with an error."""

    exit_code = 2


def prepare_socket_path(path: Path) -> None:
    """Make the socket's directory private (0700) and remove a stale socket; refuse when
    another server is listening there or the path is not a socket."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        parent = path.parent.stat()
    except OSError as exc:
        raise ConfigError(f"cannot create the control socket's folder {path.parent}: {exc.strerror or exc} "
                          "(set [edge] control_socket or --socket)") from None
    if parent.st_uid != os.getuid():
        raise ConfigError(f"the control socket's folder {path.parent} belongs to another user")
    if stat.S_IMODE(parent.st_mode) & 0o077:
        os.chmod(path.parent, 0o700)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ConfigError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # stale: its server is gone
        else:
            raise ConfigError(f"another edge server already listens on {path}")
        finally:
            probe.close()


async def start_control_server(path: Path, handle: Handler) -> asyncio.AbstractServer:
    """Listen on ``path`` (mode 0600); ``handle`` answers each request."""
    prepare_socket_path(path)

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=10)
            try:
                request = json.loads(line[:MAX_LINE] or b"null")
                if not isinstance(request, dict):
                    raise ValueError("not an object")
                answer = handle(request)
            except ScribeError as exc:
                answer = {"ok": False, "error": str(exc).splitlines()[0]}
            except (ValueError, TypeError):
                answer = {"ok": False, "error": "bad request"}
            writer.write(json.dumps(answer, ensure_ascii=False).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    old = os.umask(0o177)  # the socket is created 0600, never briefly wider
    try:
        server = await asyncio.start_unix_server(client, path=str(path), limit=MAX_LINE * 2)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


def request(path: Path, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Ask the running server (the CLI's side); one-line errors."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except FileNotFoundError:
            raise ControlError(f"no edge server is running here (no control socket at {path}): "
                               "start it with 'scribe edge serve'") from None
        except PermissionError:
            raise ControlError(f"no permission to open {path}: run this as the user that runs the edge server") from None
        except OSError as exc:
            raise ControlError(f"cannot reach the edge server at {path}: {exc.strerror or exc}") from None
        sock.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            part = sock.recv(65536)
            if not part:
                break
            data += part
    except TimeoutError:
        raise ControlError(f"the edge server at {path} did not answer") from None
    finally:
        sock.close()
    try:
        answer = json.loads(data or b"null")
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ControlError("the edge server's answer was not understood")
    if not answer.get("ok"):
        raise ControlError(f"the edge server refused: {answer.get('error', 'unknown error')}")
    return answer
