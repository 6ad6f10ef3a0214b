"""The FHIR sink's settings: the ``[fhir]`` section, and the error for anything wrong before sending."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from summarize.delivery.sinks import SinkError


class SinkConfigError(SinkError):
    """Something is wrong before sending (configuration, patient, author, TLS, login)."""

    exit_code = 2
    kind = "config"



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
