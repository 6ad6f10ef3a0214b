"""The FHIR sink's login: OAuth2 client-credentials tokens, and naming a TLS certificate failure."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

from summarize.delivery.fhir_config import FhirConfig, SinkConfigError


class SinkAuthError(SinkConfigError):
    """The token endpoint refused us or answered nonsense (nothing was sent)."""

    kind = "auth"


def certificate_problem(exc: BaseException) -> str | None:
    """The TLS certificate failure behind a connection error ("self-signed certificate",
    "unable to get local issuer certificate", a host name mismatch), or None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return str(cur.verify_message or cur.reason or "verification failed")
        text = str(cur)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return text.split("certificate verify failed:", 1)[-1].strip(" ()") or "verification failed"
        cur = cur.__cause__ or cur.__context__
    return None


class TokenSource:
    """OAuth2 client-credentials tokens (client_secret_basic), cached until shortly before expiry."""

    def __init__(self, config: FhirConfig, client: Any, *, secret: Callable[[], str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._client = client
        self._secret = secret or self._keyring_secret
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0

    def _keyring_secret(self) -> str:
        try:
            import keyring

            secret = keyring.get_password(self.config.keyring_service, self.config.client_id)
        except Exception as exc:
            raise SinkAuthError(f"cannot read the FHIR client secret from the OS keyring ({type(exc).__name__})") \
                from None
        if not secret:
            raise SinkAuthError(f"no client secret for {self.config.client_id!r} in the OS keyring "
                                "(store it with 'scribe epj secret')")
        return secret

    def header(self, *, renew: bool = False) -> dict[str, str]:
        if renew or self._token is None or self._clock() >= self._expires:
            self._fetch()
        return {"Authorization": f"Bearer {self._token}"}

    def _fetch(self) -> None:
        import httpx

        c = self.config
        try:
            r = self._client.post(c.token_url, data={"grant_type": "client_credentials", "scope": c.scope},
                                  auth=(c.client_id, self._secret()), headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            problem = certificate_problem(exc)
            if problem:
                raise SinkAuthError(f"the token endpoint's TLS certificate is not trusted ({problem}): set "
                                    "fhir.ca_bundle to the hospital's CA certificate (PEM)") from None
            raise SinkAuthError(f"the token endpoint {c.token_url} did not answer ({type(exc).__name__})") from None
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise SinkAuthError(f"the token endpoint answered HTTP {r.status_code} without JSON "
                                f"({r.headers.get('content-type', 'no content type')}): is token_url right?")
        if r.status_code >= 400 or "error" in body:
            why = body.get("error_description") or body.get("error") or f"HTTP {r.status_code}"
            raise SinkAuthError(f"the token endpoint refused the login: {' '.join(str(why).split())[:300]}")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise SinkAuthError("the token endpoint's answer has no access_token")
        self._token = token
        life = body.get("expires_in")
        self._expires = self._clock() + max(float(life) - 30, 1) if isinstance(life, (int, float)) else \
            self._clock() + 300
