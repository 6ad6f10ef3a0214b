"""Fixtures of the EPJ tests: a real sekmet-fhir process (one per module, plain; one with
OAuth2 client-credentials login) and a fault proxy in front of the plain one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fhir_server import FaultProxy, FhirServer, sekmet_server

CLIENT = {"client_id": "scribe-test", "client_secret": "s3cret-for-tests", "scopes": "system/*.*"}
READ_ONLY = {"client_id": "scribe-readonly", "client_secret": "ro-secret-for-tests", "scopes": "system/*.read"}


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with sekmet_server(Path(tmp_path_factory.mktemp("sekmet"))) as server:
        yield server


@pytest.fixture(scope="session")
def fhir_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    with sekmet_server(Path(tmp_path_factory.mktemp("sekmet-auth")), clients=[CLIENT, READ_ONLY]) as server:
        yield server


@pytest.fixture
def proxy(fhir_server: FhirServer) -> Iterator[FaultProxy]:
    p = FaultProxy(fhir_server.base_url.removesuffix("/fhir")).start()
    yield p
    p.stop()
