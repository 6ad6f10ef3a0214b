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
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import logging
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from summarize.delivery.identifiers import PersonNumber, PersonNumberError, parse_person_number
from summarize.delivery.sinks import Receipt, SinkError

logger = logging.getLogger(__name__)

IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
_NAMESPACE = uuid.UUID("6f1d8a52-3c4b-4f0e-9a57-0d6c2b1e7a11")  # ambient-scribe notes
_REF = re.compile(r"^(Practitioner|PractitionerRole|Patient|Encounter)/[A-Za-z0-9\-.]{1,64}$")
TEST_TAG = {"system": "urn:ambient-scribe:tag", "code": "connection-test",
            "display": "Syntetisk testdokument (ingen pasientdata)"}


class SinkConfigError(SinkError):
    """Something is wrong before sending (configuration, patient, author, TLS, login)."""

    exit_code = 2
    kind = "config"


class SinkAuthError(SinkConfigError):
    """The token endpoint refused us or answered nonsense (nothing was sent)."""

    kind = "auth"


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


class FhirConfig(BaseModel):
    """The ``[fhir]`` section: where and how the FHIR sink delivers."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(default="", description="FHIR base URL, e.g. https://fhir.sykehus.local/fhir")
    auth: Literal["none", "client_credentials"] = Field(
        default="none", description="none (a test server) or client_credentials (OAuth2, HelseID-style)")
    token_url: str = Field(default="", description="OAuth2 token endpoint (client_credentials)")
    client_id: str = Field(default="", description="OAuth2 client id (the secret is in the OS keyring)")
    scope: str = Field(default="system/DocumentReference.write system/DocumentReference.read",
                       description="OAuth2 scope to ask for")
    keyring_service: str = Field(default="ambient-scribe-fhir",
                                 description="OS keyring service of the client secret (user = client_id)")
    verify_tls: bool = Field(default=True, description="Verify the server's TLS certificate (keep on)")
    ca_bundle: str = Field(default="", description="PEM file of the hospital's CA; empty = the system's")
    allow_http: bool = Field(default=False, description="Allow plain http to a non-local host (not advised)")
    timeout_s: float = Field(default=15.0, gt=0, le=300, description="Seconds to wait for an answer")
    retries: int = Field(default=3, ge=0, le=10, description="Retries after a timeout or a 5xx")
    backoff_s: float = Field(default=1.0, ge=0, le=60, description="First wait between retries (doubles)")
    conditional_create: bool = Field(default=True, description="Send If-None-Exist with the identifier")
    author: str = Field(default="", description="Practitioner/ID or PractitionerRole/ID of the clinician")
    type_system: str = Field(default="http://dips.no/fhir/namingsystem/dips-documenttypeid")
    type_code: str = Field(default="1050")
    type_display: str = Field(default="Daglig notat")
    test_patient: str = Field(default="", description="Synthetic fødselsnummer for 'scribe epj test'")
    extensions: dict[str, str | int | bool] = Field(
        default_factory=dict, description="Extra extensions by URL (e.g. DIPS document attributes)")

    @field_validator("base_url", "token_url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if v and urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL")
        if v and "@" in urlsplit(v).netloc:
            raise ValueError("must not contain credentials")
        return v

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, v: dict[str, Any]) -> dict[str, Any]:
        for url in v:
            if urlsplit(url).scheme not in ("http", "https", "urn"):
                raise ValueError(f"extension key {url!r} must be a URL")
        return v


@dataclass(frozen=True, slots=True)
class Subject:
    """The patient: a checked person number or a ``Patient/ID`` reference."""

    person: PersonNumber | None = None
    reference: str | None = None

    def fhir(self) -> dict[str, Any]:
        if self.person is not None:
            return {"identifier": {"system": self.person.system, "value": self.person.value}}
        return {"reference": self.reference}


def parse_subject(text: str | None) -> Subject:
    """``13897248098`` (fødselsnummer/D-nummer) or ``Patient/123``."""
    text = (text or "").strip()
    if not text:
        raise SinkConfigError("no patient: give the fødselsnummer, D-nummer or Patient/ID")
    if text.startswith("Patient/"):
        if not _REF.match(text):
            raise SinkConfigError("the patient reference must look like Patient/ID")
        return Subject(reference=text)
    try:
        return Subject(person=parse_person_number(text))
    except PersonNumberError as exc:
        raise SinkConfigError(f"patient: {exc}") from None


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


def note_identifier(patient: str, text: str) -> str:
    """The same approved text for the same patient always gets the same urn:uuid, in any
    run: sending again after an unknown outcome (the connection broke after the POST) is
    recognised by the EPJ (If-None-Exist, or the search) and not stored twice, also from a
    new process or a restarted app. ``patient``: the subject as given (fødselsnummer or
    ``Patient/ID``); the approved text carries its date, so two notes differ."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{patient.strip()}:{digest}')}"


def build_document_reference(
    *,
    config: FhirConfig,
    subject: Subject,
    identifier: str,
    text: str,
    title: str,
    language: str,
    created: datetime,
    encounter: str | None = None,
    tags: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The DocumentReference as JSON, validated with ``fhir.resources`` (R4B)."""
    from fhir.resources.R4B.documentreference import DocumentReference
    from pydantic import ValidationError

    check_author(config.author)
    check_encounter(encounter)
    when = created.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": identifier}],
        "status": "current",
        "docStatus": "preliminary",
        "type": {"coding": [{"system": config.type_system, "code": config.type_code,
                             "display": config.type_display}]},
        "subject": subject.fhir(),
        "date": when,
        "author": [{"reference": config.author}],
        "description": title,
        "content": [{"attachment": {
            "contentType": "text/plain; charset=utf-8",
            "language": {"nb": "nb-NO", "nn": "nn-NO"}.get(language, language or "nb-NO"),
            "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
            "title": title,
            "creation": when,
        }}],
    }
    if encounter:
        resource["context"] = {"encounter": [{"reference": encounter}]}
    if config.extensions:
        resource["extension"] = [_extension(url, v) for url, v in sorted(config.extensions.items())]
    if tags:
        resource["meta"] = {"tag": tags}
    try:
        DocumentReference.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise SinkConfigError(f"the DocumentReference does not validate ({where}: {first.get('msg')})") from None
    return resource


def check_author(author: str) -> None:
    if not author:
        raise SinkConfigError("no author: set fhir.author to Practitioner/ID or PractitionerRole/ID")
    if not _REF.match(author) or not author.startswith("Practitioner"):
        raise SinkConfigError("fhir.author must look like Practitioner/ID or PractitionerRole/ID")


def check_encounter(encounter: str | None) -> None:
    if encounter is not None and not (_REF.match(encounter) and encounter.startswith("Encounter/")):
        raise SinkConfigError("the encounter must look like Encounter/ID")


def _extension(url: str, value: str | int | bool) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"url": url, "valueBoolean": value}
    if isinstance(value, int):
        return {"url": url, "valueInteger": value}
    return {"url": url, "valueString": str(value)}


def decoded_text(resource: dict[str, Any]) -> str:
    """The note text of a stored DocumentReference (for read-back checks)."""
    data = resource["content"][0]["attachment"]["data"]
    return base64.b64decode(data).decode("utf-8")


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
