"""The FHIR sink: an approved note as a FHIR R4 ``DocumentReference`` in the EPJ, exactly once.

The resource is built and validated with ``fhir.resources`` (R4B models) before a byte is
sent: ``status=current``, ``docStatus=preliminary`` (the EPJ signs it), a configurable
document type (DIPS "Daglig notat" by default), the patient by fødselsnummer/D-nummer
(checked) or by reference, the author, optionally the encounter, the note as base64
``text/plain; charset=utf-8`` and a client-made ``urn:uuid`` identifier.

Exactly once: the identifier is derived from the session and the approved text, so the
same note always carries the same identifier. When an attempt's outcome is unknown (a
timeout after the request went out, a dropped connection, a 5xx), the sink searches the
server for that identifier before it posts again; a conditional create
(``If-None-Exist``) is sent as well for servers that honour it. Client errors (4xx) are
not retried; they carry the server's OperationOutcome text. Whatever fails, the approved
note stays with the caller for another attempt or the clipboard.

Everything that can be wrong with the configuration or the patient number is found before
anything is sent (:meth:`FhirDocumentReferenceSink.check`), including the token endpoint
of an OAuth2 client-credentials login (HelseID-style; the secret lives in the OS keyring).
Logs carry status codes and attempt counts, never the note, the patient number or tokens.

This module sends (with retries and the exactly-once search) and tests the connection; the
settings are in :mod:`summarize.delivery.fhir_config`, the login in
:mod:`summarize.delivery.fhir_auth` and the resource in :mod:`summarize.delivery.fhir_resource`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from summarize.delivery.fhir_auth import TokenSource, certificate_problem
from summarize.delivery.fhir_config import FhirConfig, SinkConfigError
from summarize.delivery.fhir_resource import (
    IDENTIFIER_SYSTEM,
    build_document_reference,
    check_author,
    check_encounter,
    decoded_text,
    note_identifier,
    parse_subject,
)
from summarize.delivery.sinks import Receipt, SinkError

logger = logging.getLogger(__name__)

TEST_TAG = {"system": "urn:ambient-scribe:tag", "code": "connection-test",
            "display": "Syntetisk testdokument (ingen pasientdata)"}


class SinkRejected(SinkError):
    """The server answered 4xx: the note was not stored; the OperationOutcome says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = f"http_{status}"


class SinkUnavailable(SinkError):
    """No answer after every retry. ``maybe_stored`` when the last outcome is unknown."""

    def __init__(self, message: str, *, kind: str, maybe_stored: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.maybe_stored = maybe_stored


def operation_outcome_text(response: Any) -> str:
    """The server's own words from an OperationOutcome, else the HTTP reason."""
    try:
        body = response.json()
    except Exception:
        body = None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        parts = []
        for issue in body.get("issue") or []:
            said = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
            if said:
                parts.append(" ".join(str(said).split()))
        if parts:
            return "; ".join(parts)[:400]
    return response.reason_phrase or f"HTTP {response.status_code}"


def _ssl_context(config: FhirConfig) -> ssl.SSLContext | bool:
    if not config.verify_tls:
        logger.warning("TLS verification of the FHIR server is OFF (fhir.verify_tls = false)")
        return False
    if not config.ca_bundle:
        return True
    path = Path(config.ca_bundle).expanduser()
    if not path.is_file():
        raise SinkConfigError(f"fhir.ca_bundle {path}: no such file")
    try:
        return ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise SinkConfigError(f"fhir.ca_bundle {path}: not a PEM CA certificate file ({type(exc).__name__})") from None


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FhirDocumentReferenceSink:
    """Delivers an :class:`ApprovedNote` as a DocumentReference (see the module docstring).

    ``patient`` is the fødselsnummer/D-nummer or ``Patient/ID`` of this consultation;
    ``encounter`` an optional ``Encounter/ID``. ``client`` (an ``httpx.Client``) and
    ``sleep`` are injectable for tests. One sink object is kept per approved note so a
    retry knows that an earlier attempt may have been stored.
    """

    name = "fhir"

    def __init__(self, config: FhirConfig | None = None, *, patient: str | None = None,
                 encounter: str | None = None, client: Any = None, secret: Callable[[], str] | None = None,
                 sleep: Callable[[float], None] = time.sleep, **_: Any) -> None:
        self.config = config or FhirConfig()
        self.patient = patient
        self.encounter = encounter or None
        self._client = client
        self._secret = secret
        self._sleep = sleep
        self._tokens: TokenSource | None = None
        self._maybe_stored: set[str] = set()
        self.attempts = 0

    # -- before sending ----------------------------------------------------------------
    def check(self) -> None:
        """Everything that can be checked without sending the note (raises SinkConfigError)."""
        c = self.config
        if not c.base_url:
            raise SinkConfigError("the FHIR sink is not configured: set fhir.base_url in the settings")
        if urlsplit(c.base_url).scheme == "http" and not (_is_loopback(c.base_url) or c.allow_http):
            raise SinkConfigError("fhir.base_url is plain http to another machine: use https "
                                  "(or set fhir.allow_http if IT has decided so)")
        if c.auth == "client_credentials":
            if not c.token_url or not c.client_id:
                raise SinkConfigError("fhir.auth is client_credentials: set fhir.token_url and fhir.client_id")
        check_author(c.author)
        check_encounter(self.encounter)
        self._http()

    def preflight(self) -> None:
        """:meth:`check`, the patient, and the login: everything before the consultation
        is transcribed, so a wrong setting costs no work."""
        self.check()
        parse_subject(self.patient)
        self._auth_header()

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.Client(verify=_ssl_context(self.config), timeout=self.config.timeout_s,
                                        follow_redirects=False)
        return self._client

    def _request(self, method: str, url: str, **kw: Any) -> Any:
        """One HTTP exchange, finished within ``timeout_s`` in total. httpx's timeouts are
        per read: a server that sends one byte a second would hold the delivery (and the
        clinician) for ever. At the deadline the client is closed under the request, which
        then fails as a timeout (the next call opens a new client)."""
        import httpx

        client = self._http()
        done, expired = threading.Event(), threading.Event()

        def expire() -> None:
            if not done.is_set():
                expired.set()
                with contextlib.suppress(Exception):
                    client.close()

        timer = threading.Timer(self.config.timeout_s, expire)
        timer.daemon = True
        timer.start()
        try:
            response = client.request(method, url, **kw)
            if expired.is_set():
                raise httpx.ReadTimeout("the deadline passed")
            return response
        except Exception:
            if expired.is_set():
                raise httpx.ReadTimeout(f"no complete answer within {self.config.timeout_s:g} s") from None
            raise
        finally:
            done.set()
            timer.cancel()
            if expired.is_set() and self._client is client:
                self._client = None

    def _auth_header(self, *, renew: bool = False) -> dict[str, str]:
        if self.config.auth != "client_credentials":
            return {}
        if self._tokens is None:
            self._tokens = TokenSource(self.config, self._http(), secret=self._secret)
        return self._tokens.header(renew=renew)

    # -- delivery ----------------------------------------------------------------------
    def deliver(self, note: Any) -> Receipt:
        from summarize.consultation.session import ApprovedNote

        if not isinstance(note, ApprovedNote):
            raise SinkError("only an approved note can be delivered")
        self.check()
        assert self.patient is not None  # check() refuses a delivery without a patient
        resource = build_document_reference(
            config=self.config, subject=parse_subject(self.patient),
            identifier=note_identifier(self.patient, note.text), text=note.text, title=note.title,
            language=note.language, created=note.approved_at, encounter=self.encounter)
        stored = self.send(resource)
        return Receipt(self.name, datetime.now(UTC), f"lagret i journalen som foreløpig dokument ({stored})",
                       stored)

    def send(self, resource: dict[str, Any]) -> str:
        """POST the resource exactly once; returns ``DocumentReference/ID``."""
        import httpx

        identifier = resource["identifier"][0]["value"]
        headers = {"Content-Type": "application/fhir+json; charset=utf-8", "Accept": "application/fhir+json",
                   "Prefer": "return=representation"}
        if self.config.conditional_create:
            headers["If-None-Exist"] = f"identifier={IDENTIFIER_SYSTEM}|{identifier}"
        headers.update(self._auth_header())  # a login problem stops us before the note is sent
        url = f"{self.config.base_url}/DocumentReference"
        renewed = False
        last = "no attempt"
        uncertain = identifier in self._maybe_stored
        attempt = 0
        while True:
            if uncertain:
                found = self._find(identifier, headers)
                if found:
                    self._maybe_stored.discard(identifier)
                    logger.info("the note was already stored (found by its identifier)")
                    return found
            self.attempts += 1
            try:
                r = self._request("POST", url, json=resource, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # not sent
                problem = certificate_problem(exc)
                if problem:  # retrying cannot help: say what is wrong and how to fix it
                    raise SinkConfigError(
                        f"the EPJ's TLS certificate is not trusted ({problem}): set fhir.ca_bundle to the "
                        "hospital's CA certificate (PEM); nothing was sent") from None
                last, kind = f"cannot connect ({type(exc).__name__})", "unavailable"
            except httpx.TimeoutException:
                last, kind, uncertain = "no answer in time", "timeout", True
            except httpx.HTTPError as exc:  # sent, connection lost: maybe stored
                last, kind, uncertain = f"the connection broke ({type(exc).__name__})", "unavailable", True
            else:
                if r.status_code in (200, 201):
                    self._maybe_stored.discard(identifier)
                    return self._stored_ref(r, identifier, headers)
                if r.status_code == 401 and self.config.auth == "client_credentials" and not renewed:
                    renewed = True
                    headers.update(self._auth_header(renew=True))
                    continue
                if r.status_code in (408, 429) or r.status_code >= 500:
                    last, kind = f"HTTP {r.status_code} {operation_outcome_text(r)}", f"http_{r.status_code}"
                    uncertain = uncertain or r.status_code >= 500
                else:
                    raise SinkRejected(r.status_code, f"the EPJ refused the note (HTTP {r.status_code}): "
                                       f"{operation_outcome_text(r)}")
            # the server's own words stay out of the log: they may quote the patient
            logger.warning("FHIR delivery attempt %d failed (%s)", attempt + 1, kind)
            if uncertain:
                self._maybe_stored.add(identifier)
            if attempt >= self.config.retries:
                break
            self._sleep(min(self.config.backoff_s * 2 ** attempt, 30.0))
            attempt += 1
        if uncertain:
            found = self._find(identifier, headers)
            if found:
                self._maybe_stored.discard(identifier)
                return found
        raise SinkUnavailable(
            f"the EPJ did not take the note after {attempt + 1} attempt(s): {last}. The note is kept; "
            + ("sending again checks first whether it arrived, so it is not stored twice"
               if uncertain else "send again or copy it to the clipboard"),
            kind=kind, maybe_stored=uncertain)

    def _find(self, identifier: str, headers: dict[str, str]) -> str | None:
        """``DocumentReference/ID`` of a stored note with this identifier, None if none or unknown."""
        import httpx

        h = {k: v for k, v in headers.items() if k in ("Authorization", "Accept")}
        try:
            r = self._request("GET", f"{self.config.base_url}/DocumentReference",
                                 params={"identifier": f"{IDENTIFIER_SYSTEM}|{identifier}"}, headers=h)
            if r.status_code != 200:
                return None
            entries = r.json().get("entry") or []
        except (httpx.HTTPError, ValueError):
            return None
        for e in entries:
            res = e.get("resource") or {}
            if res.get("resourceType") == "DocumentReference" and res.get("id"):
                return f"DocumentReference/{res['id']}"
        return None

    def _stored_ref(self, r: Any, identifier: str, headers: dict[str, str]) -> str:
        try:
            body = r.json()
            if isinstance(body, dict) and body.get("id"):
                return f"DocumentReference/{body['id']}"
        except ValueError:
            pass
        m = re.search(r"DocumentReference/([A-Za-z0-9\-.]{1,64})", r.headers.get("location", ""))
        if m:
            return f"DocumentReference/{m.group(1)}"
        return self._find(identifier, headers) or "DocumentReference/?"

    def read(self, reference: str) -> dict[str, Any]:
        """GET a stored resource back (``scribe epj test``)."""
        import httpx

        try:
            r = self._request("GET", f"{self.config.base_url}/{reference}",
                                 headers={"Accept": "application/fhir+json", **self._auth_header()})
        except httpx.HTTPError as exc:
            raise SinkUnavailable(f"reading {reference} back failed ({type(exc).__name__})", kind="unavailable",
                                  maybe_stored=False) from None
        if r.status_code != 200:
            raise SinkRejected(r.status_code, f"reading {reference} back failed (HTTP {r.status_code}): "
                               f"{operation_outcome_text(r)}")
        return r.json()

    def close(self) -> None:
        if self._client is not None and hasattr(self._client, "close"):
            self._client.close()


def connection_test(config: FhirConfig, *, client: Any = None, secret: Callable[[], str] | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """IT's check: send a clearly marked synthetic document for the configured test patient,
    read it back and compare. Returns what was checked (no patient data is involved)."""
    if not config.test_patient:
        raise SinkConfigError("no test patient: set fhir.test_patient to a synthetic fødselsnummer")
    sink = FhirDocumentReferenceSink(config, patient=config.test_patient, client=client, secret=secret,
                                     sleep=sleep)
    try:
        sink.check()
        subject = parse_subject(config.test_patient)
        now = datetime.now(UTC)
        text = ("TESTDOKUMENT fra ambient-scribe (tilkoblingstest). Syntetisk innhold, ingen pasientdata. "
                f"Sendt {now.isoformat(timespec='seconds')}.")
        resource = build_document_reference(
            config=config, subject=subject, identifier=f"urn:uuid:{uuid.uuid4()}", text=text,
            title="TEST – ambient-scribe tilkoblingstest", language="nb", created=now, tags=[TEST_TAG])
        t0 = time.perf_counter()
        ref = sink.send(resource)
        sent_s = time.perf_counter() - t0
        back = sink.read(ref)
        same = {
            "identifier": back.get("identifier", [{}])[0].get("value") == resource["identifier"][0]["value"],
            "text": decoded_text(back) == text,
            "subject": back.get("subject") == resource["subject"],
            "type": back.get("type") == resource["type"],
            "docStatus": back.get("docStatus") == "preliminary",
        }
        return {"reference": ref, "sent_s": round(sent_s, 3), "attempts": sink.attempts, "checked": same,
                "ok": all(same.values()), "synthetic_patient": bool(subject.person and subject.person.synthetic)}
    finally:
        sink.close()
