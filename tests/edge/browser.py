"""Debian's Chromium for the phone client's tests: a HOME whose NSS database trusts the test CA,
the launch flags (a fake microphone, no background network), polling the page."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
               "--use-fake-device-for-media-stream"]


def nss_home(tmp: Path, ca_pem: str) -> Path:
    """A HOME whose NSS database trusts the test CA (how Chromium on Linux trusts a hospital CA)."""
    home = tmp / "browser-home"
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "ambient-scribe test CA", "-i", ca_pem],
                   check=True, capture_output=True)
    return home


def wait(page: Any, script: str, timeout_s: float) -> Any:
    """Poll ``script`` (a function) in the page until it returns something truthy. (Playwright's
    ``wait_for_function`` evaluates a string, which the app's Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s} s for {script}")
        time.sleep(0.2)
