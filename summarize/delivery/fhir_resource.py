"""The FHIR DocumentReference of a note: the patient, the note's stable identifier, the validated resource."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from summarize.delivery.fhir_config import FhirConfig, SinkConfigError
from summarize.delivery.identifiers import PersonNumber, PersonNumberError, parse_person_number

IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
_NAMESPACE = uuid.UUID("6f1d8a52-3c4b-4f0e-9a57-0d6c2b1e7a11")  # ambient-scribe notes
_REF = re.compile(r"^(Practitioner|PractitionerRole|Patient|Encounter)/[A-Za-z0-9\-.]{1,64}$")


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
