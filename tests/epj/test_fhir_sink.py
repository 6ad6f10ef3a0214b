"""The FHIR DocumentReference sink against a real sekmet-fhir server process.

Every test checks the two promises to hospital IT: the note is never lost (the caller
still holds it and a later attempt stores it) and never stored twice.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest
from fhir.resources.R4B.documentreference import DocumentReference

from asr.types import Segment, Word
from summarize.consultation.session import ApprovedNote, Session
from summarize.delivery.fhir import FhirDocumentReferenceSink, SinkRejected, SinkUnavailable, connection_test
from summarize.delivery.fhir_auth import SinkAuthError
from summarize.delivery.fhir_config import FhirConfig, SinkConfigError
from summarize.delivery.fhir_resource import (
    IDENTIFIER_SYSTEM,
    build_document_reference,
    decoded_text,
    note_identifier,
    parse_subject,
)
from summarize.delivery.identifiers import (
    DNR_SYSTEM,
    FNR_SYSTEM,
    PersonNumberError,
    parse_person_number,
    with_check_digits,
)
from summarize.delivery.registry import create_sink
from summarize.types import NoteDraft, NoteSection, Sentence
from tests.conftest import CLIENT, READ_ONLY
from tests.fhir_server import Fault, FaultProxy, FhirServer

FNR = "13897248098"          # synthetic (month + 80); by hand: k1 = 11 - 211 % 11 = 9, k2 = 11 - 190 % 11 = 8
AUTHOR = "PractitionerRole/lege-42"
NO_SLEEP = {"sleep": lambda s: None}


_N = iter(range(1, 10**6))


def approved(text: str | None = None) -> ApprovedNote:
    """An approved note; by default a new text each time (the identifier comes from the
    patient and the text, and these tests share one FHIR server)."""
    from tests.fakes import note_template

    text = text or f"Hoste og feber i tre dager. Lytter normalt. Notat {next(_N)}."
    s = Session(note_template())
    s.start()
    s.add_segment(Segment(0, 0.0, 2.0, text, (Word(" " + text, 0.0, 2.0, 0.9),), 2.0))
    s.stop()
    s.set_draft(NoteDraft("test", "1.0.0", [NoteSection("anamnese", "Anamnese", [Sentence(text, (0,))])], []))
    return s.approve()


def config(base_url: str, **kw: object) -> FhirConfig:
    return FhirConfig(base_url=base_url, author=AUTHOR, backoff_s=0, **kw)


def stored(server: FhirServer, note: ApprovedNote) -> list[dict]:
    return server.search(f"{IDENTIFIER_SYSTEM}|{note_identifier(FNR, note.text)}")


# -- person numbers -----------------------------------------------------------------------
def test_person_numbers_are_checked_and_d_numbers_and_test_numbers_accepted() -> None:
    assert parse_person_number("138972 48098").kind == "fnr"
    assert parse_person_number(FNR).system == FNR_SYSTEM
    dnr = with_check_digits("530972480")  # day 13 + 40
    assert dnr is not None and parse_person_number(dnr).system == DNR_SYSTEM
    synthetic = with_check_digits("138972480")  # Tenor test number: month + 80
    assert synthetic is not None and parse_person_number(synthetic).synthetic
    for bad, why in (("13897248099", "check digits"), ("1309724802", "11 digits"), ("32097248022", "not a date"),
                     ("1309724802x", "11 digits")):
        with pytest.raises(PersonNumberError, match=why) as e:
            parse_person_number(bad)
        assert bad not in str(e.value)  # a message never repeats the whole number


def test_the_resource_validates_and_carries_what_the_epj_needs() -> None:
    note = approved()
    cfg = config("http://127.0.0.1:1/fhir", extensions={"http://dips.no/fhir/ext/confidential": False})
    res = build_document_reference(config=cfg, subject=parse_subject(FNR), identifier="urn:uuid:x",
                                   text=note.text, title=note.title, language="nn", created=note.approved_at,
                                   encounter="Encounter/77")
    doc = DocumentReference.model_validate(res)
    assert (doc.status, doc.docStatus) == ("current", "preliminary")
    assert doc.type.coding[0].code == "1050" and doc.type.coding[0].display == "Daglig notat"
    assert doc.subject.identifier.system == FNR_SYSTEM and doc.author[0].reference == AUTHOR
    assert doc.context.encounter[0].reference == "Encounter/77"
    att = doc.content[0].attachment
    assert att.contentType == "text/plain; charset=utf-8" and att.language == "nn-NO"
    assert decoded_text(res) == note.text and att.data
    assert res["extension"] == [{"url": "http://dips.no/fhir/ext/confidential", "valueBoolean": False}]
    assert note_identifier(FNR, note.text) == note_identifier(FNR, note.text)
    assert note_identifier(FNR, note.text) != note_identifier(note.session_id, note.text + " Endret.")


# -- round trip ---------------------------------------------------------------------------
def test_round_trip_stores_exactly_what_was_approved(fhir_server: FhirServer) -> None:
    note = approved()
    sink = create_sink("fhir", config=config(fhir_server.base_url), patient=FNR, encounter="Encounter/9", **NO_SLEEP)
    receipt = sink.deliver(note)
    assert receipt.sink == "fhir" and receipt.reference and receipt.reference.startswith("DocumentReference/")
    [back] = stored(fhir_server, note)
    assert f"DocumentReference/{back['id']}" == receipt.reference
    DocumentReference.model_validate(back)  # what the server holds validates too
    sent = build_document_reference(config=config(fhir_server.base_url), subject=parse_subject(FNR),
                                     identifier=note_identifier(FNR, note.text), text=note.text,
                                     title=note.title, language=note.language, created=note.approved_at,
                                     encounter="Encounter/9")
    for key, value in sent.items():
        assert back[key] == value, key
    assert decoded_text(back) == note.text
    sink.deliver(note)  # the clinician clicks again: still one document
    assert len(stored(fhir_server, note)) == 1


@pytest.mark.parametrize("conditional", [False, True], ids=["search-before-repost", "if-none-exist"])
def test_a_connection_dropped_after_the_server_stored_the_note_makes_no_duplicate(
        fhir_server: FhirServer, proxy: FaultProxy, conditional: bool) -> None:
    note = approved()
    proxy.faults = deque([Fault("drop_after_forward")])
    sink = FhirDocumentReferenceSink(config(proxy.base_url, conditional_create=conditional), patient=FNR, **NO_SLEEP)
    receipt = sink.deliver(note)
    [doc] = stored(fhir_server, note)
    assert receipt.reference == f"DocumentReference/{doc['id']}"
    if not conditional:  # the sink searched before it would have posted again
        assert proxy.posts() == 1 and ("GET" in {m for m, _ in proxy.seen})


def test_500_is_retried_and_recovers(fhir_server: FhirServer, proxy: FaultProxy,
                                     caplog: pytest.LogCaptureFixture) -> None:
    note = approved()
    proxy.faults = deque([Fault("status", 500, {"resourceType": "OperationOutcome", "issue": [
        {"severity": "fatal", "code": "exception", "diagnostics": "database busy"}]})])
    sink = FhirDocumentReferenceSink(config(proxy.base_url), patient=FNR, **NO_SLEEP)
    sink.deliver(note)
    assert len(stored(fhir_server, note)) == 1 and proxy.posts() == 2 and sink.attempts == 2
    assert "http_500" in caplog.text and "database busy" not in caplog.text  # the server's words: not logged


def test_422_shows_the_operation_outcome_and_the_note_can_still_go(fhir_server: FhirServer,
                                                                   proxy: FaultProxy) -> None:
    note = approved()
    proxy.faults = deque([Fault("status", 422, {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "business-rule",
         "diagnostics": "Dokumenttype 1050 er ikke tillatt for denne enheten"}]})])
    sink = FhirDocumentReferenceSink(config(proxy.base_url), patient=FNR, **NO_SLEEP)
    with pytest.raises(SinkRejected, match="Dokumenttype 1050 er ikke tillatt") as e:
        sink.deliver(note)
    assert e.value.status == 422 and e.value.kind == "http_422" and proxy.posts() == 1  # a 4xx is not retried
    assert stored(fhir_server, note) == []
    sink.deliver(note)  # fixed on the server side: the same approved note goes now, once
    assert len(stored(fhir_server, note)) == 1


def test_a_server_that_never_answers_keeps_the_note_and_the_retry_stores_it_once(
        fhir_server: FhirServer, proxy: FaultProxy) -> None:
    note = approved()
    proxy.faults = deque([Fault("hang")])
    sink = FhirDocumentReferenceSink(config(proxy.base_url, timeout_s=0.5, retries=0), patient=FNR, **NO_SLEEP)
    with pytest.raises(SinkUnavailable, match="not stored twice") as e:
        sink.deliver(note)
    assert e.value.maybe_stored and e.value.kind == "timeout"
    assert stored(fhir_server, note) == []
    receipt = sink.deliver(note)  # the clinician sends again: it searches first, then posts
    assert len(stored(fhir_server, note)) == 1 and receipt.reference


def test_a_timeout_is_retried_with_backoff(fhir_server: FhirServer, proxy: FaultProxy) -> None:
    note = approved()
    waits: list[float] = []
    proxy.faults = deque([Fault("hang")])
    sink = FhirDocumentReferenceSink(FhirConfig(base_url=proxy.base_url, author=AUTHOR, timeout_s=0.5,
                                                backoff_s=0.25), patient=FNR, sleep=waits.append)
    sink.deliver(note)
    assert waits == [0.25] and len(stored(fhir_server, note)) == 1


# -- authentication -----------------------------------------------------------------------
def _auth_config(server: FhirServer, client: dict[str, str], **kw: object) -> FhirConfig:
    return config(server.base_url, auth="client_credentials", token_url=server.token_url,
                  client_id=client["client_id"], scope="system/DocumentReference.write system/DocumentReference.read",
                  **kw)


def test_client_credentials_login_then_round_trip(fhir_auth_server: FhirServer, memory_keyring) -> None:
    import keyring

    keyring.set_password("ambient-scribe-fhir", CLIENT["client_id"], CLIENT["client_secret"])
    note = approved()
    sink = FhirDocumentReferenceSink(_auth_config(fhir_auth_server, CLIENT), patient=FNR, **NO_SLEEP)
    receipt = sink.deliver(note)
    token = sink._auth_header()
    [doc] = fhir_auth_server.search(f"{IDENTIFIER_SYSTEM}|{note_identifier(FNR, note.text)}", token)
    assert receipt.reference == f"DocumentReference/{doc['id']}"


def test_401_without_login_and_403_with_a_read_only_client(fhir_auth_server: FhirServer) -> None:
    note = approved()
    anonymous = FhirDocumentReferenceSink(config(fhir_auth_server.base_url), patient=FNR, **NO_SLEEP)
    with pytest.raises(SinkRejected, match="HTTP 401") as e401:
        anonymous.deliver(note)
    assert e401.value.status == 401
    ro = FhirDocumentReferenceSink(_auth_config(fhir_auth_server, READ_ONLY), patient=FNR,
                                   secret=lambda: READ_ONLY["client_secret"], **NO_SLEEP)
    with pytest.raises(SinkRejected, match="HTTP 403") as e403:
        ro.deliver(note)
    assert e403.value.status == 403
    good = FhirDocumentReferenceSink(_auth_config(fhir_auth_server, CLIENT), patient=FNR,
                                     secret=lambda: CLIENT["client_secret"], **NO_SLEEP)
    good.deliver(note)  # the note survived both refusals
    assert len(fhir_auth_server.search(f"{IDENTIFIER_SYSTEM}|{note_identifier(FNR, note.text)}",
                                       good._auth_header())) == 1


# -- bad input: a clear message before anything is sent -----------------------------------
def _refused_before_sending(proxy: FaultProxy, sink: FhirDocumentReferenceSink, match: str,
                            error: type[Exception] = SinkConfigError) -> None:
    with pytest.raises(error, match=match):
        sink.deliver(approved())
    assert proxy.posts() == 0


def test_bad_input_is_refused_before_anything_is_sent(proxy: FaultProxy, fhir_auth_server: FhirServer,
                                                      tmp_path: Path, memory_keyring) -> None:
    ok = config(proxy.base_url)
    _refused_before_sending(proxy, FhirDocumentReferenceSink(ok, patient="13897248099"), "check digits")
    _refused_before_sending(proxy, FhirDocumentReferenceSink(ok, patient=""), "no patient")
    _refused_before_sending(proxy, FhirDocumentReferenceSink(FhirConfig(base_url=proxy.base_url), patient=FNR),
                            "no author")
    _refused_before_sending(proxy, FhirDocumentReferenceSink(FhirConfig(author=AUTHOR), patient=FNR),
                            "not configured")
    _refused_before_sending(proxy, FhirDocumentReferenceSink(
        config("http://fhir.sykehus.example/fhir"), patient=FNR), "plain http")
    _refused_before_sending(proxy, FhirDocumentReferenceSink(
        config(proxy.base_url, ca_bundle=str(tmp_path / "missing.pem")), patient=FNR), "no such file")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    _refused_before_sending(proxy, FhirDocumentReferenceSink(
        config(proxy.base_url, ca_bundle=str(junk)), patient=FNR), "not a PEM")
    wrong = config(proxy.base_url, auth="client_credentials", token_url=fhir_auth_server.token_url,
                   client_id=CLIENT["client_id"])
    _refused_before_sending(proxy, FhirDocumentReferenceSink(wrong, patient=FNR, secret=lambda: "wrong"),
                            "refused the login: Invalid client credentials", SinkAuthError)
    portal = FaultProxy(fhir_auth_server.base_url.removesuffix("/fhir")).start()  # a login page, not OAuth2
    try:
        portal.faults = deque([Fault("status", 200, "<html><body>Logg inn</body></html>")])
        html = config(proxy.base_url, auth="client_credentials", client_id="x",
                      token_url=portal.base_url.removesuffix("/fhir") + "/login")
        _refused_before_sending(proxy, FhirDocumentReferenceSink(html, patient=FNR, secret=lambda: "x"),
                                "HTTP 200 without JSON \\(text/html\\)", SinkAuthError)
    finally:
        portal.stop()
    _refused_before_sending(proxy, FhirDocumentReferenceSink(wrong, patient=FNR), "no client secret", SinkAuthError)
    assert proxy.seen == []


def test_connection_test_sends_a_marked_synthetic_document_and_reads_it_back(fhir_server: FhirServer) -> None:
    synthetic = with_check_digits("138972480")
    assert synthetic is not None
    result = connection_test(config(fhir_server.base_url, test_patient=synthetic))
    assert result["ok"] and all(result["checked"].values()) and result["synthetic_patient"]
    ref = result["reference"].split("/")[1]
    import httpx

    back = httpx.get(f"{fhir_server.base_url}/DocumentReference/{ref}").json()
    assert back["meta"]["tag"][0]["code"] == "connection-test" and "TESTDOKUMENT" in decoded_text(back)
    with pytest.raises(SinkConfigError, match="no test patient"):
        connection_test(config(fhir_server.base_url))


def test_a_server_that_drips_its_answer_is_cut_off_at_the_deadline(fhir_server: FhirServer, proxy: FaultProxy) -> None:
    """#17 item 2: httpx's timeout is per read, so a server sending one byte a second held the
    delivery for minutes with timeout_s = 3. Each exchange now ends at timeout_s in total; the
    note was stored by the server, the search finds it, and it is not stored twice."""
    import threading

    note = approved()
    proxy.faults = deque([Fault("drip")])
    sink = FhirDocumentReferenceSink(config(proxy.base_url, timeout_s=2, retries=0), patient=FNR, **NO_SLEEP)
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(sink.deliver(note)), daemon=True)
    worker.start()
    worker.join(30)  # the drip alone would take several minutes
    assert not worker.is_alive(), "delivery still hanging"
    assert outcome and outcome[0].reference.startswith("DocumentReference/")  # found by its identifier
    assert len(stored(fhir_server, note)) == 1 and proxy.posts() == 1


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the kind a lab EPJ has), made with cryptography."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "epj.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp_path / "epj.crt", tmp_path / "epj.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def test_an_untrusted_certificate_is_named_and_not_retried(tmp_path: Path) -> None:
    """#17: a self-signed or unknown-CA EPJ was reported as "cannot connect (ConnectError)" and
    retried three times. Now: one line naming the certificate problem and the setting."""
    import http.server
    import ssl
    import threading

    crt, key = _self_signed(tmp_path)
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    waits: list[float] = []
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/fhir"
        sink = FhirDocumentReferenceSink(FhirConfig(base_url=url, author=AUTHOR, retries=3, backoff_s=1), patient=FNR,
                                         sleep=waits.append)
        with pytest.raises(SinkConfigError) as err:
            sink.deliver(approved())
        msg = str(err.value)
        assert "certificate is not trusted" in msg and "self-signed" in msg and "fhir.ca_bundle" in msg
        assert waits == [] and sink.attempts == 1 and hits == []  # not retried, nothing sent
        trusted = FhirDocumentReferenceSink(config(url, ca_bundle=str(crt)), patient=FNR, **NO_SLEEP)
        trusted.deliver(approved())  # with the hospital's CA configured, it goes
        assert hits == ["/fhir/DocumentReference"]
    finally:
        server.shutdown()
