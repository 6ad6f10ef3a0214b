"""``scribe edge``: the mobile edge server (phones record, this machine transcribes and drafts).

    scribe edge serve [--host H] [--port P] --cert PEM --key KEY [--max-consultations N]
    scribe edge pair --user PractitionerRole/ID [--name "Dr. …"] [--json]
    scribe edge devices [--json]
    scribe edge revoke ID

``serve`` loads the models once and serves the phone client and its API over TLS only.
``pair``, ``devices`` and ``revoke`` talk to the running server over its local control socket
(mode 0600): run them on the server host as the server's user. Pairing codes and paired
devices live in the server's memory; nothing is written to disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import datetime
from typing import Any

from asr.errors import printable


def add_edge_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("edge", help="the mobile edge server: hospital phones record, this machine transcribes and drafts")
    esub = e.add_subparsers(dest="edge_command", metavar="ACTION", required=True)
    s = esub.add_parser("serve", help="serve the phone client and its API over TLS (models loaded once)")
    s.add_argument("--host", help="address to listen on (default [edge] host, 0.0.0.0)")
    s.add_argument("--port", type=int, help="HTTPS port (default [edge] port, 8443)")
    s.add_argument("--cert", metavar="PEM", help="TLS certificate chain from the hospital CA")
    s.add_argument("--key", metavar="KEY", help="its private key")
    s.add_argument("--max-consultations", type=int, metavar="N", help="live consultations at once (default [edge])")
    s.add_argument("--public-url", metavar="URL", help="https://HOST:PORT as the phones reach it (in the QR code)")
    p = esub.add_parser("pair", help="a one-time pairing QR code for a phone (valid 60 s)")
    p.add_argument("--user", required=True, metavar="PractitionerRole/ID", help="the clinician (author of the notes)")
    p.add_argument("--name", default="", help="the clinician's name, shown on the phone")
    p.add_argument("--json", action="store_true", help='print {"url","token","expires_s"} instead of a QR code')
    d = esub.add_parser("devices", help="list the paired phones")
    d.add_argument("--json", action="store_true", help="print JSON")
    r = esub.add_parser("revoke", help="end a phone's pairing at once (its consultations are wiped)")
    r.add_argument("id", metavar="ID", help="the device id from 'scribe edge devices'")
    for q in (s, p, d, r):
        q.add_argument("--socket", metavar="PATH", help="the control socket (default [edge] control_socket)")


def _settings(args: argparse.Namespace) -> Any:
    from app.settings import load_settings

    edge = {"control_socket": getattr(args, "socket", None)}
    if args.edge_command == "serve":
        edge.update(host=args.host, port=args.port, cert=args.cert, key=args.key,
                    max_consultations=args.max_consultations, public_url=args.public_url)
    return load_settings(edge=edge)


def cmd_edge(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.edge_command == "serve":
        return _serve(settings)
    from app.edge.control import request

    path = settings.edge.socket_path()
    if args.edge_command == "pair":
        answer = request(path, {"op": "pair", "user": args.user, "name": args.name})
        if args.json:
            print(json.dumps({k: answer[k] for k in ("url", "token", "expires_s")}))
            return 0
        import segno

        qr = segno.make(answer["url"], error="m")
        qr.terminal(out=sys.stdout, compact=True)
        print(f"Scan with the phone's camera within {answer['expires_s']} s (single use): {answer['url']}")
        return 0
    if args.edge_command == "devices":
        answer = request(path, {"op": "devices"})
        if args.json:
            print(json.dumps(answer["devices"], ensure_ascii=False))
            return 0
        devices = answer["devices"]
        if not devices:
            print("no paired phones")
        for dev in devices:
            seen = datetime.fromtimestamp(dev["last_seen"]).strftime("%H:%M:%S")
            print(f"{dev['id']}  {printable(dev['user'])}  {printable(dev['name'] or '-')}  "
                  f"{printable(dev['device'])}  last seen {seen}  expires in {dev['expires_s'] // 60} min")
        print(f"{answer['live']} live consultation(s), {answer['refused']} refused as busy")
        return 0
    answer = request(path, {"op": "revoke", "id": args.id})
    print(f"revoked {answer['revoked']}: its connections are closed and its consultations wiped")
    return 0


def _serve(settings: Any) -> int:
    import asyncio

    from app.common import progress_factory
    from app.edge.control import prepare_socket_path
    from app.edge.run import build_state, check_tls, public_url, uvicorn_server
    from summarize.consultation.engine import Scribe

    edge = settings.edge
    check_tls(edge.cert, edge.key)
    prepare_socket_path(edge.socket_path())  # a bad or busy socket path: its one line, before the models load
    for name in ("scribe.edge", "scribe.edge.access", "app.edge.sessions"):
        logging.getLogger(name).setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    for name in ("scribe.edge", "app.edge.sessions"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).propagate = False
    scribe = Scribe(settings, progress_factory=progress_factory(sys.stderr))
    t0 = time.perf_counter()
    print("scribe edge: loading the models ...", file=sys.stderr)
    scribe.load()
    if scribe.llm_problem:
        print(f"scribe: warning: no language model ({printable(scribe.llm_problem)}): drafts are extractive",
              file=sys.stderr)
    state = build_state(settings, scribe)
    url = public_url(settings)

    def ready() -> None:
        print(f"scribe edge: serving {url} (models loaded in {time.perf_counter() - t0:.0f} s, at most "
              f"{edge.max_consultations} live consultations). Pair a phone: scribe edge pair --user "
              "PractitionerRole/ID", file=sys.stderr)

    server = uvicorn_server(state, host=edge.host, port=edge.port, cert=edge.cert, key=edge.key,
                            control_socket=edge.socket_path(), url=url, on_ready=ready)
    try:
        asyncio.run(server.serve())
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped by hand: after a clean shutdown
        pass
    finally:
        scribe.close()
    print("scribe edge: stopped (every consultation wiped, every pairing forgotten)", file=sys.stderr)
    return 0
