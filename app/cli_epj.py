"""``scribe epj``: hospital IT's checks of the EPJ connection.

    scribe epj test [--sink fhir] [--url URL] [--json]
        send a clearly marked synthetic test document (no patient data; the test patient
        from fhir.test_patient) and read it back
    scribe epj secret [--client-id ID]
        store the OAuth2 client secret in the OS keyring (read from the terminal or stdin)
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any


def add_epj_parser(sub: Any) -> None:
    e = sub.add_parser("epj", help="EPJ connection: test it, store its login secret")
    esub = e.add_subparsers(dest="epj_command", metavar="ACTION", required=True)
    t = esub.add_parser("test", help="send a synthetic test document and read it back")
    t.add_argument("--sink", default="fhir", help="the sink to test (fhir)")
    t.add_argument("--url", metavar="URL", help="FHIR base URL (default: fhir.base_url of the settings)")
    t.add_argument("--json", action="store_true", help="the result as JSON")
    s = esub.add_parser("secret", help="store the FHIR client secret in the OS keyring")
    s.add_argument("--client-id", metavar="ID", help="OAuth2 client id (default: fhir.client_id)")


def cmd_epj(args: argparse.Namespace) -> int:
    from app.settings import load_settings

    settings = load_settings(fhir={"base_url": getattr(args, "url", None)})
    if args.epj_command == "secret":
        return _secret(settings, args.client_id)
    return _test(settings, args)


def _test(settings: Any, args: argparse.Namespace) -> int:
    from asr.errors import ConfigError
    from summarize.delivery.fhir import connection_test

    if args.sink == "clipboard":
        raise ConfigError("the clipboard sink has no connection to test; 'scribe epj test' checks --sink fhir")
    if args.sink != "fhir":
        raise ConfigError(f"unknown EPJ sink {args.sink!r}: 'scribe epj test' checks --sink fhir")
    cfg = settings.fhir
    if sys.stderr.isatty() and not args.json:
        print(f"sending a synthetic test document to {cfg.base_url or '(no URL)'} …", file=sys.stderr)
    result = connection_test(cfg)
    if args.json:
        print(json.dumps({"url": cfg.base_url, **result}))
    else:
        checks = ", ".join(f"{k} {'ok' if v else 'DIFFERS'}" for k, v in result["checked"].items())
        print(f"{cfg.base_url}: stored {result['reference']} in {result['sent_s']:.2f} s "
              f"({result['attempts']} attempt(s)); read back: {checks}")
        if not result["synthetic_patient"]:
            print("note: fhir.test_patient is not a synthetic (test register) number", file=sys.stderr)
        print("EPJ connection OK" if result["ok"] else "EPJ connection FAILED: the stored document differs")
    return 0 if result["ok"] else 1


def _secret(settings: Any, client_id: str | None) -> int:
    from asr.errors import ConfigError

    cfg = settings.fhir
    client_id = client_id or cfg.client_id
    if not client_id:
        raise ConfigError("no client id: give --client-id or set fhir.client_id")
    if sys.stdin.isatty():
        secret = getpass.getpass(f"client secret for {client_id}: ")
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise ConfigError("empty secret: nothing stored")
    try:
        import keyring

        keyring.set_password(cfg.keyring_service, client_id, secret)
    except Exception as exc:
        raise ConfigError(f"cannot store the secret in the OS keyring ({type(exc).__name__})") from None
    print(f"client secret for {client_id} stored in the OS keyring (service {cfg.keyring_service})")
    return 0
