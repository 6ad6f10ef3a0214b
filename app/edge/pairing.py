"""Pairing a phone without passwords: a one-time code shown as a QR code on the server host
becomes a device cookie bound to one clinician for a shift.

Codes (256 bit, single use, valid ``ttl_s``) and device sessions live in this object's memory
and are kept only as SHA-256 hashes: a restart means pairing again, and nothing is written to
disk. Nothing here logs a code, a cookie or a user.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from asr.errors import ConfigError

COOKIE = "scribe_device"
_USER = re.compile(r"^(Practitioner|PractitionerRole)/[A-Za-z0-9\-.]{1,64}$")
_LABEL_MAX = 60


class PairingError(Exception):
    """A code or cookie that does not pair: the message is for the phone's screen (bokmål)."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def check_user(user: str) -> str:
    """The clinician a phone is paired to: the FHIR author reference of their notes."""
    user = user.strip()
    if not _USER.match(user):
        raise ConfigError(f"--user must be Practitioner/ID or PractitionerRole/ID, not {user[:40]!r}")
    return user


def clean_label(text: str, limit: int = _LABEL_MAX) -> str:
    """A name to show (a device's or a clinician's): printable, one line, short."""
    text = "".join(ch for ch in str(text) if ch.isprintable()).strip()
    return text[:limit]


@dataclass
class Device:
    """A paired phone."""

    id: str
    user: str
    name: str
    label: str
    paired_at: float
    expires_at: float
    last_seen: float
    secret_hash: str = field(repr=False)

    def to_dict(self, now: float) -> dict[str, object]:
        return {"id": self.id, "user": self.user, "name": self.name, "device": self.label,
                "paired_at": round(self.paired_at), "last_seen": round(self.last_seen),
                "expires_s": max(0, round(self.expires_at - now))}


@dataclass
class _Code:
    user: str
    name: str
    expires_at: float


class Pairings:
    """The pairing codes and paired devices of one server process (thread-safe)."""

    def __init__(self, *, ttl_s: float = 60.0, shift_s: float = 12 * 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.shift_s = shift_s
        self._clock = clock
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, Device] = {}  # by id
        self._by_secret: dict[str, str] = {}  # secret hash -> device id
        self._lock = threading.Lock()
        self.on_revoke: list[Callable[[str], None]] = []

    # -- codes ----------------------------------------------------------------------------
    def new_code(self, user: str, name: str = "") -> tuple[str, float]:
        """A one-time code for ``user``: (code, seconds valid)."""
        user = check_user(user)
        code = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._codes = {h: c for h, c in self._codes.items() if c.expires_at > now}
            self._codes[_hash(code)] = _Code(user, clean_label(name), now + self.ttl_s)
        return code, self.ttl_s

    def redeem(self, code: str, label: str = "") -> tuple[Device, str]:
        """Use a code once: the new device and its cookie secret. A used, expired or unknown
        code raises :class:`PairingError`."""
        if not isinstance(code, str) or not 20 <= len(code) <= 100:
            raise PairingError("Ugyldig paringskode. Be om en ny QR-kode.")
        now = self._clock()
        with self._lock:
            entry = self._codes.pop(_hash(code), None)  # single use, whatever happens next
            if entry is None:
                raise PairingError("Paringskoden er ukjent eller allerede brukt. Be om en ny QR-kode.")
            if entry.expires_at <= now:
                raise PairingError("Paringskoden er utløpt. Be om en ny QR-kode.")
            secret = secrets.token_urlsafe(32)
            device = Device(id=secrets.token_hex(6), user=entry.user, name=entry.name,
                            label=clean_label(label) or "telefon", paired_at=now,
                            expires_at=now + self.shift_s, last_seen=now, secret_hash=_hash(secret))
            self._devices[device.id] = device
            self._by_secret[device.secret_hash] = device.id
        return device, secret

    # -- devices --------------------------------------------------------------------------
    def device(self, secret: str | None) -> Device | None:
        """The paired device of a cookie (None: missing, unknown, revoked or expired)."""
        if not secret or len(secret) > 100:
            return None
        now = self._clock()
        with self._lock:
            device_id = self._by_secret.get(_hash(secret))
            device = self._devices.get(device_id) if device_id else None
            if device is None:
                return None
            if device.expires_at <= now:
                self._forget(device)
                return None
            device.last_seen = now
            return device

    def alive(self, device_id: str) -> bool:
        with self._lock:
            device = self._devices.get(device_id)
            return device is not None and device.expires_at > self._clock()

    def devices(self) -> list[dict[str, object]]:
        now = self._clock()
        with self._lock:
            for d in [d for d in self._devices.values() if d.expires_at <= now]:
                self._forget(d)
            return [d.to_dict(now) for d in sorted(self._devices.values(), key=lambda d: d.paired_at)]

    def revoke(self, device_id: str) -> bool:
        """End a device's pairing at once (its connections are closed by the listeners)."""
        with self._lock:
            device = self._devices.get(device_id)
            if device is None:
                return False
            self._forget(device)
        for listener in list(self.on_revoke):
            listener(device_id)
        return True

    def _forget(self, device: Device) -> None:
        self._devices.pop(device.id, None)
        self._by_secret.pop(device.secret_hash, None)

    def clear(self) -> None:
        with self._lock:
            self._codes.clear()
            self._devices.clear()
            self._by_secret.clear()
