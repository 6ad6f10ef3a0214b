"""The edge server's tests: a test CA (trustme), the server on a thread with TLS, clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.edge.client import EdgeClient
from tests.keyrings import memory_keyring  # noqa: F401 (fixture for every test module)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A test CA and a server certificate for localhost / 127.0.0.1 (PEM files)."""
    import trustme

    d = Path(tmp_path_factory.mktemp("tls"))
    ca = trustme.CA(organization_name="ambient-scribe test CA")
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert.private_key_pem.write_to_path(str(d / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(d / "server.pem"))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(d / "server.pem"), append=True)
    return SimpleNamespace(ca=ca, ca_pem=str(d / "ca.pem"), cert=str(d / "server.pem"), key=str(d / "server.key"), dir=d)


@pytest.fixture
def fake_edge(tmp_path: Path, tls: SimpleNamespace) -> Iterator[Any]:
    """An edge server with a scripted transcriber and LLM, a recording sink and a real audit log."""
    from tests.edge.fake_server import FakeEdge

    edge = FakeEdge(tmp_path, tls).start()
    yield edge
    edge.stop()


@pytest.fixture
def client_factory(fake_edge: Any, tls: SimpleNamespace) -> Any:
    def make() -> EdgeClient:
        return EdgeClient(fake_edge.url, tls.ca_pem)

    return make
