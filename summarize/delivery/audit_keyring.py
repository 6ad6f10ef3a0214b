"""The audit log's HMAC key: 32 random bytes, base64 in the OS keyring, never in the file."""

from __future__ import annotations

import base64
import binascii
import logging
import secrets

from summarize.delivery.audit import AuditError

logger = logging.getLogger(__name__)

KEYRING_SERVICE = "ambient-scribe"
KEYRING_USER = "audit-hmac-key"
KEY_BYTES = 32


def _keyring_failure(exc: BaseException) -> AuditError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return AuditError(
        f"no OS keyring for the audit key ({type(exc).__name__}): "
        f"{first or 'the keyring backend failed'}"
    )


def _decode_key(stored: str, service: str, user: str) -> bytes:
    try:
        key = base64.b64decode(stored.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        # Never replaced automatically: a new key would make the existing log unverifiable.
        raise AuditError(
            f"the audit key in the OS keyring (service {service!r}, user {user!r}) is damaged; "
            "restore it from a backup, or move the audit log aside before a new key is made"
        )
    return key


def audit_key(
    service: str = KEYRING_SERVICE, user: str = KEYRING_USER, *, create: bool = True
) -> bytes:
    """The HMAC key of the audit log: 32 random bytes, base64 in the OS keyring.

    Created on first use when ``create`` (appending); verification passes
    ``create=False``, because a key made on the spot could not verify anything. A missing
    or broken keyring raises :class:`AuditError`; the key never appears in a message.
    """
    try:
        import keyring

        stored = keyring.get_password(service, user)
    except Exception as exc:  # NoKeyringError, KeyringError, any backend failure
        raise _keyring_failure(exc) from None
    if stored is not None:
        return _decode_key(stored, service, user)
    if not create:
        raise AuditError("no audit key in the OS keyring: this log cannot be verified here")
    new = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
    try:
        keyring.set_password(service, user, new)
        stored = keyring.get_password(service, user)  # another process may have won the race
    except Exception as exc:
        raise _keyring_failure(exc) from None
    if stored is None:
        raise AuditError(
            "no OS keyring for the audit key (the keyring did not keep it): "
            "configure a keyring backend"
        )
    logger.info("audit key created in the OS keyring (service %s)", service)
    return _decode_key(stored, service, user)
